"""Channel order, end to end: in-memory arrays are RGB and stay RGB; files are read and written in their
own channel order. Every image written is read back with PIL, independently of cv2's BGR convention."""

import numpy as np
import pytest
from PIL import Image

from blindsr_gym.data import BUILTIN_NAMES, ImageList, builtin


def _pil(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _skimage(name: str) -> np.ndarray:
    import skimage.data as skd

    return skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()


def test_builtin_images_equal_scikit_images_arrays():
    ds = builtin(mod=4)
    for i, name in enumerate(BUILTIN_NAMES):
        ref = _skimage(name)
        h, w = ds[i].shape[:2]
        assert np.array_equal(ds[i], ref[:h, :w]), name
    # chelsea is an orange tabby: red over blue (scikit-image's channel means 148 / 111 / 87)
    r, _, b = builtin()[1].reshape(-1, 3).mean(0)
    assert r > b + 40


def test_image_list_keeps_rgb_arrays_unchanged():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((20, 24), 9, np.uint8)])
    wide = rgb.astype(np.uint16) * 257  # 16-bit scaled to 8-bit exactly
    ds = ImageList([rgb, rgba, wide, rgb[..., 0]], ["rgb", "rgba", "16bit", "gray"])
    assert np.array_equal(ds[0], rgb) and np.array_equal(ds[1], rgb) and np.array_equal(ds[2], rgb)
    assert np.array_equal(ds[3], np.repeat(rgb[..., :1], 3, axis=2))


def _red(side: int = 256, seed: int = 0) -> np.ndarray:
    """A textured red image: R varies, G and B are small constants (so Y and every metric are defined)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((side, side, 3), np.uint8)
    img[..., 0] = rng.integers(120, 256, (side, side))
    img[..., 1], img[..., 2] = 10, 30
    return img


def test_a_red_image_stays_red_through_the_env():
    from blindsr_gym.envs import BlindSREnv

    env = BlindSREnv(renderer="bicubic", dataset=ImageList([_red()], ["red"]), lr_size=32, device="cpu",
                     render_mode="rgb_array")
    obs, info = env.reset(seed=0, options={"sigma": 1.0})
    r, g, b = obs.reshape(-1, 3).mean(0)
    assert r > 150 and abs(g - 10) < 2 and abs(b - 30) < 2
    env.step(info["action_gt"])
    panel = env.render()
    tiles = np.split(panel, 4, axis=1)  # bicubic | SR with the action | SR with the true kernel | HR
    for t in tiles:
        m = t.reshape(-1, 3).mean(0)
        assert m[0] > 150 and m[2] > m[1] and m[0] > 4 * m[2], m


def test_demo_figure_on_disk_is_rgb(tmp_path):
    from blindsr_gym.cli import main
    from blindsr_gym.envs import BlindSREnv

    assert main(["demo", "--renderer", "bicubic", "--lr-size", "48", "--sigmas", "2.0", "--out", str(tmp_path),
                 "--threads", "1"]) == 0
    fig = _pil(tmp_path / "demo.png")
    env = BlindSREnv(renderer="bicubic", metric="psnr", lr_size=48, device="cpu")
    side = 192  # one row per image: 20-pixel caption, 192-pixel tiles 4 pixels apart, rows 6 pixels apart
    for i, name in enumerate(env.core.source.names):
        env.reset(seed=0, options={"image_index": i, "sigma": 2.0})
        top = i * (side + 20 + 6) + 20
        hr_tile = fig[top:top + side, 3 * (side + 4):3 * (side + 4) + side]
        assert np.array_equal(hr_tile, np.round(env._hr[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)), name
    cat = fig[1 * (side + 26) + 20:][:side, 3 * (side + 4):].reshape(-1, 3).mean(0)
    assert cat[0] > cat[2]  # the cat's fur is orange, not blue


def test_evaluate_figures_on_disk_are_rgb(tmp_path):
    from blindsr_gym.cli import main

    assert main(["evaluate", "--data", "builtin", "--max-images", "1", "--kernels", "sigma:2.0", "--methods",
                 "bicubic", "--metrics", "psnr", "--figures", str(tmp_path), "--no-progress"]) == 0
    (png,) = tmp_path.glob("*.png")
    panel = _pil(png)
    hr = builtin(mod=4)[0]  # astronaut; the panel's last tile is its 128x128 centre crop, under a 22-pixel label
    h, w = hr.shape[:2]
    want = hr[(h - 128) // 2:(h - 128) // 2 + 128, (w - 128) // 2:(w - 128) // 2 + 128]
    assert np.array_equal(panel[22:, -128:], want)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg"])
def test_upscale_output_on_disk_keeps_the_inputs_channels(tmp_path, suffix):
    from blindsr_gym.upscale import upscale_files

    src = _red(32, seed=1)
    Image.fromarray(src).save(tmp_path / f"red{suffix}", quality=100)
    (rep,) = upscale_files([tmp_path / f"red{suffix}"], tmp_path / "out", method="bicubic", progress=False)
    sr = _pil(rep["output"])
    assert sr.shape == (128, 128, 3)
    m = sr.reshape(-1, 3).mean(0)
    assert m[0] > 150 and abs(m[1] - 10) < 3 and abs(m[2] - 30) < 3, m
