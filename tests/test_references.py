"""The env, the training pairs, the diagnostics and every trainer's resume, checked against references
computed outside the code under test (tests/reference.py) or by hand: these fail when the code is wrong,
not only when it changes (issue 26; `python scripts/mutation_check.py` plants the bugs they must catch)."""


import numpy as np
import pytest
import torch
from reference import eq1_ref, gaussian_ref, psnr_y_ref

from blindsr_gym.data import ImageList, builtin
from blindsr_gym.envs import BlindSREnv
from blindsr_gym.kernels import KernelCodec, isotropic_sigma


def _close_levels(a: np.ndarray, b: np.ndarray, what: str = "") -> None:
    """8-bit images equal but for float32-vs-float64 rounding: >= 99.9% identical, never > 1 level apart."""
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.max() <= 1 and (d == 0).mean() >= 0.999, (what, int(d.max()), float((d == 0).mean()))


@pytest.fixture(scope="module")
def crop():
    """One natural 256x256 image: with lr_size=64 the env's HR crop is the whole image, known exactly."""
    return np.ascontiguousarray(builtin()[0][100:356, 150:406])


def _env(crop, **kw):
    return BlindSREnv(dataset=ImageList([crop], ["astronaut"]), lr_size=64, device="cpu", **kw)


# ------------------------------------------------------------------ the env's observation is Eq. 1
def test_observation_is_eq1_of_the_episode_kernel(crop):
    env = _env(crop, renderer="bicubic")
    sigmas = []
    for seed in range(4):  # widths drawn by the env
        obs, info = env.reset(seed=seed)
        sigmas.append(info["sigma"])
        _close_levels(obs, eq1_ref(crop, gaussian_ref(info["sigma"])), f"seed {seed}")
    assert max(sigmas) - min(sigmas) > 1  # several widths, not one
    for s in (0.4, 1.3, 3.5):  # widths given
        obs, _ = env.reset(seed=0, options={"sigma": s})
        _close_levels(obs, eq1_ref(crop, gaussian_ref(s)), f"sigma {s}")


def test_observation_with_seeded_noise_is_eq1_plus_that_noise(crop):
    env = _env(crop, renderer="bicubic", noise=5.0)
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed, options={"sigma": 2.0, "image_index": 0})
        # the env's draws, in its documented order: crop position (top, left), then the noise
        rng = np.random.default_rng(seed)
        rng.integers(1), rng.integers(1)
        noise = rng.standard_normal((1, 3, 64, 64), dtype=np.float32)[0].transpose(1, 2, 0).astype(np.float64)
        _close_levels(obs, eq1_ref(crop, gaussian_ref(2.0), noise=5.0 * noise), f"seed {seed}")
        clean = eq1_ref(crop, gaussian_ref(2.0))
        assert 3 < np.std(obs.astype(float) - clean) < 7  # and the noise is there: sigma 5 levels


@pytest.fixture(scope="module")
def amnet():
    from blindsr_gym.renderers import load_renderer

    return load_renderer("amnet_x4")


def test_info_psnr_is_the_renderers_psnr_y_computed_outside(crop, amnet):
    env = _env(crop, renderer=amnet, metric="psnr")
    for s in (1.2, 2.6):
        obs, info = env.reset(seed=0, options={"sigma": s})
        with torch.no_grad():
            lr = torch.from_numpy(obs).permute(2, 0, 1)[None].float() / 255
            code = amnet.codec.encode(torch.from_numpy(gaussian_ref(s)).float()[None])
            sr = amnet(lr, code).clamp(0, 1)
        sr8 = np.floor(sr[0].permute(1, 2, 0).numpy().astype(np.float64) * 255 + 0.5).astype(np.uint8)
        _, _, _, _, info = env.step(info["action_gt"])
        assert info["psnr"] == pytest.approx(psnr_y_ref(sr8, crop), abs=0.01)
        assert info["psnr_gt"] == pytest.approx(info["psnr"], abs=1e-9)


def test_a_wrong_width_gets_a_negative_psnr_reward(crop, amnet):
    env = _env(crop, renderer=amnet, metric="psnr")
    codec = amnet.codec
    for s in (1.6, 2.6):
        for wrong in (s - 1.0, s + 1.0):
            env.reset(seed=0, options={"sigma": s})
            a = codec.code_to_action(codec.encode(torch.from_numpy(gaussian_ref(wrong)).float()[None]))[0].numpy()
            _, r, _, _, info = env.step(a)
            assert r < -0.1 and info["psnr"] < info["psnr_gt"] - 0.1, (s, wrong, r)
            assert r == pytest.approx(info["psnr"] - info["psnr_gt"], abs=1e-6)  # Eq. 8, zeta = +1 for PSNR


def test_a_lower_is_better_metric_rewards_a_lower_score():
    """zeta = -1 for NIQE, +1 for PSNR: an action whose score is lower than the baseline's gets r > 0
    under a lower-is-better metric and r < 0 under a higher-is-better one (hand-made scores)."""
    from blindsr_gym.rewards import make_reward

    lower, higher = {"niqe": torch.tensor([4.0])}, {"psnr": torch.tensor([28.0])}
    assert float(make_reward("niqe").reward(lower, {"niqe": torch.tensor([5.0])})[0]) == pytest.approx(1.0)
    assert float(make_reward("psnr").reward(higher, {"psnr": torch.tensor([30.0])})[0]) == pytest.approx(-2.0)


# ------------------------------------------------------------------ the training pairs are Eq. 1 with their codes
def _pairs(**kw):
    from blindsr_gym.synthesis import SyntheticPairs

    src = ImageList([builtin()[i][:160, :160] for i in range(3)], ["a", "b", "c"])
    return SyntheticPairs(src, KernelCodec.default(), patch=24, **kw)


def test_training_pairs_are_eq1_of_their_kernels_with_their_codes():
    lr, code, hr, k = _pairs().sample(np.random.default_rng(0), 6, with_kernels=True)
    codec = KernelCodec.default()
    hr8 = np.round(hr.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    lr8 = np.round(lr.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    widths = isotropic_sigma(k)
    assert float(widths.max() - widths.min()) > 0.5  # different kernels per sample
    for i in range(6):
        _close_levels(lr8[i], eq1_ref(hr8[i], k[i].double().numpy()), f"pair {i}")
        torch.testing.assert_close(code[i], codec.encode(k[i:i + 1])[0], rtol=0, atol=1e-6)


def test_code_blur_never_shows_a_narrower_kernel():
    lr, code, hr, k = _pairs(code_blur=2.0, code_blur_p=1.0).sample(np.random.default_rng(1), 8, with_kernels=True)
    codec = KernelCodec.default()
    shown, true = isotropic_sigma(codec.decode(code)), isotropic_sigma(codec.decode(codec.encode(k)))
    assert torch.all(shown >= true - 1e-3) and float((shown - true).mean()) > 0.2, (shown, true)
    hr8 = np.round(hr.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    lr8 = np.round(lr.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    for i in range(8):  # the LR images are still made with the true kernels
        _close_levels(lr8[i], eq1_ref(hr8[i], k[i].double().numpy()), f"pair {i}")


# ------------------------------------------------------------------ diagnostics by value
def test_policy_diagnostics_by_hand():
    from blindsr_gym.agents.ddpg import evaluate_policy, make_vec_env

    env = make_vec_env("BlindSR-PSNR-v0", 4, renderer="bicubic", lr_size=32, device="cpu")
    _, info = env.reset(seed=5)
    gt = info["action_gt"].copy()
    assert np.abs(gt).max() < 0.95  # the codec's box has a 10% margin: gt + 0.05 is not clipped
    oracle = evaluate_policy(lambda obs: gt, env, seed=5)
    assert oracle["action_l1_error"] == 0 and oracle["code_rel_error"] < 1e-5
    assert abs(oracle["reward"]) < 1e-6 and oracle["psnr"] == pytest.approx(oracle["psnr_true_kernel"], abs=1e-6)
    off = evaluate_policy(lambda obs: gt + 0.05, env, seed=5)
    assert off["action_l1_error"] == pytest.approx(0.05, abs=1e-6)
    assert off["code_rel_error"] > 0


