"""Every shipped model's card figures reproduce: one Set5 Gaussian8 width per model, re-evaluated here with
the card's own method and models, within 0.01 dB PSNR-Y and 1e-4 SSIM-Y of the card (needs the shared data)."""

import json

import pytest

from blindsr_gym.evaluate import evaluate, make_method, parse_kernels

# model -> (its card, the method the card evaluated, the models it ran with, one Gaussian8 width)
CASES = {
    "amnet_x4": ("renderers", "gt", {"renderer": "amnet_x4"}, "sigma=1.80"),
    "amnet2_x4": ("renderers", "gt", {"renderer": "amnet2_x4"}, "sigma=2.60"),
    "amnet_robust_x4": ("renderers", "gt", {"renderer": "amnet_robust_x4"}, "sigma=2.00"),
    "amnet_robust2_x4": ("renderers", "gt", {"renderer": "amnet_robust2_x4"}, "sigma=3.20"),
    "amnet_adain_x4": ("renderers", "gt", {"renderer": "amnet_adain_x4"}, "sigma=2.20"),
    "amgan_x4": ("renderers", "gt", {"renderer": "amgan_x4"}, "sigma=2.40"),
    "amgan2_x4": ("renderers", "gt", {"renderer": "amgan2_x4"}, "sigma=2.80"),
    "dan_x4": ("renderers", "dan", {"dan": "dan_x4"}, "sigma=2.60"),
    "kenet_x4": ("agents", "kenet", {"kenet": "kenet_x4", "renderer": "amnet_x4"}, "sigma=2.80"),
    "actor_psnr_x4": ("agents", "amnet-rl", {"actor": "actor_psnr_x4", "renderer": "amnet_x4"}, "sigma=3.00"),
    "actor_niqe_x4": ("agents", "amgan-rl", {"gan_actor": "actor_niqe_x4", "gan_renderer": "amgan_x4"}, "sigma=3.20"),
    "actor_niqe2_x4": ("agents", "amgan-rl", {"gan_actor": "actor_niqe2_x4", "gan_renderer": "amgan_x4"}, "sigma=1.80"),
    "actor_niqe3_x4": ("agents", "amgan-rl", {"gan_actor": "actor_niqe3_x4", "gan_renderer": "amgan_x4"}, "sigma=2.40"),
    "actor_niqe4_x4": ("agents", "amgan-rl", {"gan_actor": "actor_niqe4_x4", "gan_renderer": "amgan2_x4"},
                       "sigma=2.00"),
    "actor_psnr_rl_x4": ("agents", "amnet-rl", {"actor": "actor_psnr_rl_x4", "renderer": "amnet_x4"}, "sigma=2.00"),
    "actor_psnr_rl2_x4": ("agents", "amnet-rl", {"actor": "actor_psnr_rl2_x4", "renderer": "amnet_x4"}, "sigma=2.20"),
}


@pytest.mark.data
@pytest.mark.parametrize("model", sorted(CASES))
def test_card_figure_reproduces_on_set5(model, data_root):
    from importlib import resources

    from blindsr_gym.data import benchmark

    package, method, models, width = CASES[model]
    card = json.loads((resources.files(f"blindsr_gym.{package}") / "weights" / f"{model}.json").read_text())
    (want,) = [r for r in card["evaluation"]["gaussian8"]["records"]
               if r["dataset"] == "Set5" and r["method"] == method and r["kernel"] == width]
    kernels = [(label, k) for label, k in parse_kernels("gaussian8") if label == width]
    (got,) = evaluate({"Set5": benchmark("Set5", data_root / "test")}, kernels, [make_method(method, **models)],
                      ["psnr", "ssim"], progress=False)
    assert got["images"] == want["images"] == 5
    assert got["psnr"] == pytest.approx(want["psnr"], abs=0.01), (model, got["psnr"], want["psnr"])
    assert got["ssim"] == pytest.approx(want["ssim"], abs=1e-4), (model, got["ssim"], want["ssim"])
