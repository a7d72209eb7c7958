import math
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.special import gamma
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from blindsr_gym.degradation import imresize
from blindsr_gym.kernels import isotropic_gaussian
from blindsr_gym.metrics import Metric, get_metric, list_metrics, niqe, psnr, register_metric, ssim
from blindsr_gym.metrics.color import rgb_to_gray, rgb_to_y
from blindsr_gym.metrics.niqe import niqe_params
from blindsr_gym.utils import to_tensor


def crops(images, size, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return torch.cat([to_tensor(images.random_crop(rng, size, index=i)[0]) for i in range(n)])


# ------------------------------------------------------------------------------- colour, PSNR, SSIM
def test_matlab_colour_conversions_known_values():
    px = torch.tensor([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [10, 20, 30]]).T
    x = (px.double() / 255).reshape(1, 3, 1, 5)
    # rgb2ycbcr: 16 + 65.481 r + 128.553 g + 24.966 b, rounded
    assert rgb_to_y(x).flatten().tolist() == [235, 16, 81, 145, 32]
    # rgb2gray on uint8 (coefficients 0.2989, 0.5870, 0.1140), rounded
    assert rgb_to_gray(x).flatten().tolist() == [255, 0, 76, 150, 18]


def y_numpy(x):
    v = np.floor(x.double().numpy() * 255 + 0.5) / 255
    return np.floor(16 + 65.481 * v[:, 0] + 128.553 * v[:, 1] + 24.966 * v[:, 2] + 0.5)


def test_psnr_ssim_against_skimage(builtin_images):
    hr = crops(builtin_images, 96)
    lr = imresize(hr, 0.25)
    sr = imresize(lr, 4.0).clamp(0, 1)
    p, s = psnr(sr, hr), ssim(sr, hr)
    assert p.shape == s.shape == (3,) and p.dtype == torch.float64
    ya, yb = y_numpy(sr)[:, 4:-4, 4:-4], y_numpy(hr)[:, 4:-4, 4:-4]
    for i in range(3):
        ref_p = peak_signal_noise_ratio(yb[i], ya[i], data_range=255)
        ref_s = structural_similarity(yb[i], ya[i], data_range=255, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
        assert abs(float(p[i]) - ref_p) < 1e-10
        assert abs(float(s[i]) - ref_s) < 1e-10
    assert 15 < float(p.min()) < float(p.max()) < 40 and 0 < float(s.min()) < 1


def test_psnr_by_hand_and_edge_cases():
    hr = torch.full((1, 3, 20, 20), 100 / 255, dtype=torch.float64)
    sr = hr.clone()
    sr[..., 10, 10] += 10 / 255  # one pixel off by 10 levels on every channel
    # Y moves by (65.481+128.553+24.966)*10/255 = 8.588 -> 9 levels after rounding (Y 102 -> 110.6)
    dy = float(rgb_to_y(sr)[0, 0, 10, 10] - rgb_to_y(hr)[0, 0, 10, 10])
    expected = 10 * math.log10(255**2 / (dy**2 / 144))  # 12x12 pixels after the 4-pixel crop
    assert abs(float(psnr(sr, hr)) - expected) < 1e-9
    assert float(psnr(hr, hr)) == math.inf
    assert float(ssim(hr, hr)) == pytest.approx(1.0, abs=1e-12)
    # RGB: one pixel 10 levels off on each of 3 channels of 20x20 -> MSE 300 / 1200 = 0.25 levels^2
    assert float(psnr(sr, hr, crop_border=0, y_channel=False)) == pytest.approx(10 * math.log10(255**2 / 0.25),
                                                                                  abs=1e-9)
    # with a 4-pixel border cropped the pixel (10, 10) is still in: 12x12 -> MSE 300 / 432
    assert float(psnr(sr, hr, crop_border=4, y_channel=False)) == pytest.approx(
        10 * math.log10(255**2 / (300 / 432)), abs=1e-9)
    with pytest.raises(ValueError, match="same shape"):
        psnr(sr, hr[..., :19])
    with pytest.raises(ValueError, match="crop_border"):
        psnr(sr, hr, crop_border=10)
    with pytest.raises(ValueError, match="float NCHW"):
        ssim(sr[0], hr[0])


# ------------------------------------------------------------------------------------------- NIQE
def niqe_reference(gray):
    """Literal numpy transcription of the MATLAB release's computequality.m (loops over blocks).

    Independent of blindsr_gym except for imresize, which test_degradation pins to MATLAB.
    """
    p = niqe_params()
    gam = np.linspace(0.2, 10, 9801)
    r_gam = gamma(2 / gam) ** 2 / (gamma(1 / gam) * gamma(3 / gam))

    def aggd(vec):
        with np.errstate(invalid="ignore", divide="ignore"):
            left = np.sqrt(np.mean(vec[vec < 0] ** 2)) if np.any(vec < 0) else np.nan
            right = np.sqrt(np.mean(vec[vec > 0] ** 2)) if np.any(vec > 0) else np.nan
            gh = left / right
            rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec**2)
            rn = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
        alpha = gam[np.argmin((r_gam - rn) ** 2)]  # argmin of all-NaN is 0, like MATLAB's min
        f = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
        return alpha, left * f, right * f

    def feature(block):
        a, bl, br = aggd(block.ravel())
        feat = [a, (bl + br) / 2]
        for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
            pair = block.ravel() * np.roll(block, shift, axis=(0, 1)).ravel()
            a, bl, br = aggd(pair)
            feat += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
        return feat

    im = gray[: gray.shape[0] // 96 * 96, : gray.shape[1] // 96 * 96]
    feats = []
    for scale in (1, 2):
        mu = ndimage.correlate(im, p["window"], mode="nearest")
        sigma = np.sqrt(np.abs(ndimage.correlate(im * im, p["window"], mode="nearest") - mu * mu))
        sd = (im - mu) / (sigma + 1)
        b = 96 // scale
        feats.append(np.array([feature(sd[r:r + b, c:c + b]) for r in range(0, sd.shape[0], b)
                               for c in range(0, sd.shape[1], b)]))
        im = imresize(torch.from_numpy(im)[None, None], 0.5)[0, 0].numpy()
    f = np.concatenate(feats, axis=1)
    mu_d = np.nanmean(f, axis=0)
    cov_d = np.cov(f[~np.isnan(f).any(axis=1)], rowvar=False)
    d = p["mu"] - mu_d
    return float(np.sqrt(d @ np.linalg.pinv((p["cov"] + cov_d) / 2) @ d))


def test_niqe_matches_reference_transcription(builtin_images):
    x = crops(builtin_images, 256, n=5)
    ours = niqe(x)
    assert ours.shape == (5,) and ours.dtype == torch.float64
    gray = rgb_to_gray(x)[:, 0].numpy()
    for i in range(5):
        # NIQE is ill-conditioned (a grid argmin per block, a 36-D covariance from few blocks):
        # perturbing the half-scale image by 1e-12 moves scores by up to ~1e-3 relative, so float
        # summation order alone (conv2d vs ndimage) gives ~1e-5. A logic error gives >= 1e-2.
        assert float(ours[i]) == pytest.approx(niqe_reference(gray[i]), rel=1e-4), builtin_images.names[i]


def test_niqe_quadratic_form_equals_pinv_and_falls_back_on_a_non_definite_matrix():
    """d' pinv(C) d by a Cholesky factor, against numpy's pinv: the pristine covariance averaged with random
    PSD ones (the NIQE case, rel 1e-10), and matrices that are not positive definite (singular, indefinite),
    which take the pinv fallback and must still equal numpy's pinv."""
    from blindsr_gym.metrics.niqe import _quadratic_form

    rng = np.random.default_rng(0)
    cov_p = niqe_params()["cov"]
    a = rng.standard_normal((6, 36, 5))
    mats = [(cov_p + x @ x.T / 5) / 2 for x in a]  # rank-5 image covariances, as from few blocks
    v = rng.standard_normal((36, 3))
    mats += [v @ v.T, v @ np.diag([1.0, -2.0, 0.5]) @ v.T]  # singular PSD; singular indefinite
    d = rng.standard_normal((len(mats), 36, 1))
    got = _quadratic_form(torch.as_tensor(np.stack(mats)), torch.as_tensor(d)).numpy()
    want = np.array([(di.T @ np.linalg.pinv(m) @ di).item() for m, di in zip(mats, d, strict=True)])
    np.testing.assert_allclose(got[:6], want[:6], rtol=1e-10)
    np.testing.assert_allclose(got[6:], want[6:], rtol=1e-6)


def test_niqe_batch_equals_single_and_is_deterministic(builtin_images):
    x = crops(builtin_images, 200, n=3, seed=1)
    batch = niqe(x)
    assert torch.equal(batch, niqe(x))
    for i in range(3):
        assert float(niqe(x[i:i + 1])[0]) == pytest.approx(float(batch[i]), rel=1e-10)


def test_niqe_rises_with_blur(builtin_images):
    from blindsr_gym.degradation import blur

    x = crops(builtin_images, 288, n=3, seed=2)
    scores = [niqe(blur(x, isotropic_gaussian(s))) for s in (0.3, 1.5, 3.0)]
    assert torch.all(scores[0] < scores[1]) and torch.all(scores[1] < scores[2])


def test_niqe_gray_input_and_options(builtin_images):
    x = crops(builtin_images, 256, n=2)
    g = rgb_to_gray(x) / 255
    assert torch.allclose(niqe(g), niqe(x), rtol=1e-12)
    assert not torch.allclose(niqe(x, color="y"), niqe(x))
    # crop_border scores the image without its border, exactly
    torch.testing.assert_close(niqe(x, crop_border=4), niqe(x[..., 4:-4, 4:-4]), rtol=0, atol=0)
    assert not torch.allclose(niqe(x, crop_border=4), niqe(x))


def test_niqe_errors():
    with pytest.raises(ValueError, match="at least 192x192"):
        niqe(torch.rand(1, 3, 191, 300))
    with pytest.raises(ValueError, match="after crop_border=4"):
        niqe(torch.rand(1, 3, 196, 196), crop_border=4)
    with pytest.raises(ValueError, match="color"):
        niqe(torch.rand(1, 3, 192, 192), color="lab")
    with pytest.raises(ValueError, match="float images"):
        niqe(torch.rand(3, 192, 192))


def test_niqe_flat_image_is_nan_not_an_error():
    # MATLAB gives NaN on a constant image (every block feature is NaN); so do we, explicitly
    assert torch.isnan(niqe(torch.full((1, 3, 192, 192), 0.5))).all()


# ------------------------------------------------------------------------------------------- registry
def test_registry_metadata_and_calls(builtin_images):
    assert {"niqe", "psnr", "ssim"} <= set(list_metrics())
    m = get_metric("niqe")
    assert m.lower_better and not m.needs_reference
    assert not get_metric("psnr").lower_better and get_metric("psnr").needs_reference
    x = crops(builtin_images, 200, n=2)
    assert m(x).shape == (2,)
    with pytest.raises(ValueError, match="full-reference"):
        get_metric("psnr")(x)


def test_unknown_metric_did_you_mean():
    with pytest.raises(KeyError, match="did you mean 'niqe'"):
        get_metric("nique")
    with pytest.raises(KeyError, match="unknown metric"):
        get_metric("zzz")


def test_register_metric():
    name = "test_mean_brightness"
    metric = register_metric(name, lambda sr: sr.mean(dim=(1, 2, 3)), lower_better=False, overwrite=True)
    assert isinstance(metric, Metric) and get_metric(name) is metric
    assert get_metric(name)(torch.ones(2, 3, 8, 8)).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="already registered"):
        register_metric(name, lambda sr: sr.mean(), lower_better=False)
    with pytest.raises(ValueError, match="lower_better"):
        register_metric("x_no_sign", lambda sr: sr.mean())
    bad = register_metric("x_bad_len", lambda sr: torch.zeros(5), lower_better=True, overwrite=True)
    with pytest.raises(RuntimeError, match="returned 5 values"):
        bad(torch.ones(2, 3, 8, 8))


def test_pyiqa_missing_names_the_extra(monkeypatch):
    from blindsr_gym.metrics import pyiqa_adapter

    pyiqa_adapter.pyiqa_metric.cache_clear()
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import pyiqa now raises ImportError
    with pytest.raises(ImportError, match=r"blindsr-gym\[pyiqa\]"):
        get_metric("pyiqa:niqe")
    pyiqa_adapter.pyiqa_metric.cache_clear()


@pytest.mark.parametrize("look_up_all", [False, True])
def test_fast_y_and_psnr_equal_the_float64_formula_exactly(look_up_all, monkeypatch):
    """rgb_to_y's table look-up and psnr's integer sum equal the float64 reference formula bit for bit (every
    one of the 2**24 colours, and images with values on the rounding boundaries), with the near pixels looked
    up alone (the CPU's way) or with every pixel indexed (an accelerator's, which does not wait for it)."""
    from blindsr_gym.metrics.color import YCBCR_Y, rgb_to_y_levels

    lv = torch.arange(2**24, dtype=torch.int64)
    rgb = torch.stack([lv >> 16, (lv >> 8) & 255, lv & 255]).double() / 255  # [3, 2**24] on exact levels
    y_ref = torch.floor(16 + YCBCR_Y[0] * rgb[0] + YCBCR_Y[1] * rgb[1] + YCBCR_Y[2] * rgb[2] + 0.5)
    y_fast = rgb_to_y_levels(rgb.float().reshape(1, 3, 4096, 4096), look_up_all).reshape(-1)
    assert torch.equal(y_fast.double(), y_ref)
    import blindsr_gym.metrics.fidelity as fidelity  # psnr's Y below takes the same path

    monkeypatch.setattr(fidelity, "rgb_to_y_levels", lambda x: rgb_to_y_levels(x, look_up_all))
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (4, 3, 40, 36), generator=g).float() / 255
    sr = (hr * 255 + torch.randint(-6, 7, hr.shape, generator=g) + 0.5 * (torch.rand(hr.shape, generator=g) > 0.5))
    sr = (sr / 255).clamp(0, 1)  # half-level values: the rounding boundaries

    def y(x, border):
        v = torch.floor(x.clamp(0, 1) * 255 + 0.5).double() / 255
        out = torch.floor(16 + YCBCR_Y[0] * v[:, 0] + YCBCR_Y[1] * v[:, 1] + YCBCR_Y[2] * v[:, 2] + 0.5)
        return out[:, border:out.shape[1] - border, border:out.shape[2] - border]

    for border in (0, 4):
        ref = 10 * torch.log10(255.0**2 / (y(sr, border) - y(hr, border)).pow(2).mean(dim=(1, 2)))
        assert torch.equal(psnr(sr, hr, crop_border=border), ref)


def test_fast_separable_filter_equals_the_reference_one():
    from blindsr_gym.metrics._filter import separable, separable_fast

    x = torch.rand(2, 5, 30, 27, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for k, s in ((11, 1.5), (7, 7 / 6)):
        ax = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
        taps = torch.exp(-(ax**2) / (2 * s**2))
        taps = taps / taps.sum()
        ref = separable(x, taps)
        assert ref.shape == (2, 5, 30 - k + 1, 27 - k + 1)
        torch.testing.assert_close(separable_fast(x, taps), ref, rtol=0, atol=1e-13)  # a GPU's SSIM filter


def test_ssim_in_passes_with_opencv_equals_the_reference_filter():
    """The CPU path (OpenCV's filter, a few images per pass) against the slow reference filter and the
    SSIM formula written out here, on a batch that spans several passes, in Y and in RGB."""
    from blindsr_gym.metrics import fidelity
    from blindsr_gym.metrics._filter import separable

    g = torch.Generator().manual_seed(1)
    hr = torch.rand(7, 3, 40, 36, dtype=torch.float64, generator=g)
    sr = (hr + 0.1 * torch.randn(hr.shape, dtype=torch.float64, generator=g)).clamp(0, 1)
    ax = torch.arange(11, dtype=torch.float64) - 5
    taps = torch.exp(-(ax**2) / 4.5)
    taps = taps / taps.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    for y_channel, border in ((True, 4), (False, 0)):
        a, b = (rgb_to_y(t) if y_channel else torch.floor(t * 255 + 0.5) for t in (sr, hr))
        if border:
            a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
        mu_a, mu_b, e_aa, e_bb, e_ab = (separable(t, taps) for t in (a, b, a * a, b * b, a * b))
        s_aa, s_bb, s_ab = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b
        smap = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
        ref = smap.mean(dim=(-2, -1)).mean(dim=1)
        old = fidelity.PSNR_PASS_PIXELS, fidelity.SSIM_PASS_PIXELS
        try:
            fidelity.PSNR_PASS_PIXELS = fidelity.SSIM_PASS_PIXELS = 3 * 40 * 36  # passes of 3, 3 and 1 images
            torch.testing.assert_close(ssim(sr, hr, crop_border=border, y_channel=y_channel), ref, rtol=0, atol=1e-12)
            one_by_one = torch.cat([psnr(sr[i:i + 1], hr[i:i + 1], crop_border=border, y_channel=y_channel)
                                    for i in range(7)])
            assert torch.equal(psnr(sr, hr, crop_border=border, y_channel=y_channel), one_by_one)
        finally:
            fidelity.PSNR_PASS_PIXELS, fidelity.SSIM_PASS_PIXELS = old


def test_register_metric_reads_the_reference_from_the_signature():
    from blindsr_gym.metrics import register_metric

    fr = register_metric("_test_l1", lambda sr, hr: (sr - hr).abs().mean(dim=(1, 2, 3)), lower_better=True,
                         overwrite=True)
    nr = register_metric("_test_brightness", lambda sr: sr.mean(dim=(1, 2, 3)), lower_better=False, overwrite=True)
    assert fr.needs_reference and not nr.needs_reference
    x, y = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    assert torch.equal(fr(x, y), torch.ones(2)) and torch.equal(nr(y), torch.ones(2))
    with pytest.raises(ValueError, match="compares with hr, but needs_reference=False"):
        register_metric("_test_bad", lambda sr, hr: sr.mean(dim=(1, 2, 3)), lower_better=True,
                        needs_reference=False, overwrite=True)
    with pytest.raises(ValueError, match="scores sr alone, but needs_reference=True"):
        register_metric("_test_bad", lambda sr: sr.mean(dim=(1, 2, 3)), lower_better=True, needs_reference=True,
                        overwrite=True)


def test_metric_options_pass_through_and_unknown_ones_are_named():
    from blindsr_gym.errors import InputError
    from blindsr_gym.metrics import at_scale, get_metric, niqe, psnr

    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 40, 40, generator=g)
    sr = (hr + 0.05 * torch.randn(2, 3, 40, 40, generator=g)).clamp(0, 1)
    assert torch.equal(get_metric("psnr", crop_border=2)(sr, hr), psnr(sr, hr, crop_border=2))
    assert not torch.equal(psnr(sr, hr, crop_border=2), psnr(sr, hr, crop_border=4))
    assert get_metric("psnr").options == {}  # the registry's metric is not changed by a caller's options
    with pytest.raises(InputError, match="takes no option crop; its options are crop_border, y_channel"):
        get_metric("psnr", crop=2)
    # at a scale, fidelity metrics crop that many pixels (unless told otherwise); no-reference ones are untouched
    assert at_scale(get_metric("ssim"), 2).options == {"crop_border": 2}
    assert at_scale(get_metric("psnr", crop_border=0), 2).options == {"crop_border": 0}
    assert at_scale(get_metric("niqe"), 4) == get_metric("niqe") and get_metric("niqe").fn is niqe


def test_a_x2_env_scores_its_psnr_reward_with_a_border_of_2():
    import numpy as np

    from blindsr_gym.envs import BlindSREnv
    from blindsr_gym.metrics import psnr
    from blindsr_gym.renderers import build_renderer

    env = BlindSREnv(renderer=build_renderer("bicubic", scale=2), metric="psnr", lr_size=32, device="cpu")
    env.reset(seed=0)
    _, reward, *_, info = env.step(np.zeros(15, np.float32))
    want = psnr(env._sr, env._hr, crop_border=2) - psnr(env._sr_gt, env._hr, crop_border=2)
    assert reward == pytest.approx(float(want[0]), abs=1e-9) and info["psnr"] == pytest.approx(float(
        psnr(env._sr, env._hr, crop_border=2)[0]), abs=1e-9)


def test_niqe_in_passes_equals_one_image_at_a_time(builtin_images):
    niqe_module = sys.modules["blindsr_gym.metrics.niqe"]  # the package's `niqe` is the function

    x = crops(builtin_images, 192)
    x = torch.cat([x, x.flip(-1)])  # six images
    one_by_one = torch.cat([niqe(x[i:i + 1]) for i in range(x.shape[0])])
    old = niqe_module.CPU_PASS_PIXELS
    try:
        niqe_module.CPU_PASS_PIXELS = 4 * 192 * 192  # passes of 4 and 2
        assert torch.equal(niqe(x), one_by_one)
    finally:
        niqe_module.CPU_PASS_PIXELS = old


def test_niqe_fused_block_features_equal_the_separate_calls(builtin_images):
    """Off the CPU NIQE filters the image and its square in one pass and fits the coefficients and their four
    neighbour products in one call (a third of the launches). The features must be the separate calls', bit for
    bit (NIQE's grid argmin turns any rounding into score changes), at both scales, NaN rows included."""
    import numpy as np

    from blindsr_gym.degradation import imresize
    from blindsr_gym.metrics.color import rgb_to_gray
    from blindsr_gym.metrics.niqe import BLOCK, _block_features, _constants
    from blindsr_gym.utils import to_tensor

    rng = np.random.default_rng(0)
    img = rgb_to_gray(torch.cat([to_tensor(builtin_images.random_crop(rng, 192)[0]) for _ in range(6)]))
    img[0] = 128.0  # a flat image: its blocks' fits are NaN
    k = _constants(torch.device("cpu"))
    for block, x in ((BLOCK, img), (BLOCK // 2, imresize(img, 0.5))):
        plain, fused = (_block_features(x, block, k["taps"], k["tables"], fused=f) for f in (False, True))
        assert plain.shape == (6, 4, 18) and torch.isnan(plain[0]).any()
        assert torch.equal(plain.nan_to_num(-7.0), fused.nan_to_num(-7.0))
