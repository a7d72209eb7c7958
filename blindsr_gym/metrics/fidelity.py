"""PSNR and SSIM as the SR literature reports them.

As in the MATLAB evaluation scripts of the SR papers: the images are put on 8-bit levels, converted
to the Y channel of MATLAB's ``rgb2ycbcr`` (rounded, range 16-235), ``crop_border`` pixels are
shaved from every edge, and the scores are computed in float64 on the 0-255 scale. SSIM is Wang et
al.'s ``ssim_index``: an 11x11 Gaussian window with sigma 1.5, 'valid' filtering, K = (0.01, 0.03).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from blindsr_gym.errors import InputError

from ..degradation import to_levels as _levels
from ._filter import separable_fast
from ._passes import in_passes
from .color import rgb_to_y, rgb_to_y_levels, to_levels

__all__ = ["psnr", "ssim"]


#: Pixels per pass on the CPU, PSNR four 256x256 images, SSIM eight: about the fastest of 1 to 64 per pass
#: (``python benchmarks/metrics.py --sweep-passes``; docs/experiments/2026-11-27_cpu_malloc.md).
PSNR_PASS_PIXELS = 1 << 18
SSIM_PASS_PIXELS = 1 << 19


def _check(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool) -> None:
    for name, t in (("sr", sr), ("hr", hr)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4 or not t.is_floating_point():
            raise InputError(f"{name} must be a float NCHW tensor in [0, 1], got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if sr.shape != hr.shape:
        raise InputError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise InputError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    h, w = sr.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise InputError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
    if y_channel and sr.shape[1] != 3:
        raise InputError("y_channel=True needs RGB images (3 channels)")


def _prepare(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool, levels: bool = False):
    """The two images on 8-bit levels (Y or RGB), border cropped: float64, or uint8 when ``levels``."""
    if y_channel:
        a, b = (rgb_to_y_levels(sr), rgb_to_y_levels(hr)) if levels else (rgb_to_y(sr), rgb_to_y(hr))
    else:
        a, b = (_levels(sr).to(torch.uint8), _levels(hr).to(torch.uint8)) if levels else (to_levels(sr), to_levels(hr))
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def psnr(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 4, y_channel: bool = True) -> torch.Tensor:
    """PSNR in dB per image, float64 ``[N]``; ``inf`` for identical images.

    The images are on 8-bit levels, so the squared errors are integers: they are summed exactly in int64
    (the float64 mean of the reference formula is exact too, so the result is the same to the last bit).
    """
    _check(sr, hr, crop_border, y_channel)
    return in_passes(_psnr, (sr, hr), PSNR_PASS_PIXELS, crop_border, y_channel)


def _psnr(sr, hr, crop_border, y_channel):
    a, b = _prepare(sr, hr, crop_border, y_channel, levels=True)
    d = a.to(torch.int32) - b.to(torch.int32)
    sse = (d * d).sum(dim=(1, 2, 3), dtype=torch.int64)
    mse = sse.to(torch.float64) / (d[0].numel())
    return 10 * torch.log10(255.0**2 / mse)


@functools.lru_cache(maxsize=8)
def _gauss_taps(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """1-D taps whose outer product is the normalised size x size Gaussian window."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return (g / g.sum()).to(device)


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 4, y_channel: bool = True) -> torch.Tensor:
    """SSIM per image (mean of the SSIM map; channels averaged when not on Y), float64 ``[N]``."""
    _check(sr, hr, crop_border, y_channel)
    h, w = sr.shape[-2] - 2 * crop_border, sr.shape[-1] - 2 * crop_border
    if min(h, w) < 11:
        raise InputError(f"SSIM needs at least 11x11 pixels after cropping, got {(h, w)}")
    return in_passes(_ssim, (sr, hr), SSIM_PASS_PIXELS, crop_border, y_channel)


def _ssim(sr, hr, crop_border, y_channel):
    a, b = _prepare(sr, hr, crop_border, y_channel)
    n, c = a.shape[:2]
    taps = _gauss_taps(11, 1.5, a.device)
    if a.device.type == "cpu":  # OpenCV's separable filter, one image (five maps) at a time
        import cv2

        k, lo = taps.numpy(), taps.numel() // 2  # keep where the centred window lies inside ('valid')
        h, w = a.shape[-2] - 2 * lo, a.shape[-1] - 2 * lo
        out = torch.empty(n * c, dtype=torch.float64)
        planes = (t.detach().reshape(-1, *t.shape[-2:]).numpy() for t in (a, b))
        for i, (x, y) in enumerate(zip(*planes, strict=True)):
            m = cv2.sepFilter2D(np.stack([x, y, x * x, y * y, x * y], axis=-1), cv2.CV_64F, k, k,
                                borderType=cv2.BORDER_REPLICATE)[lo:lo + h, lo:lo + w]
            out[i] = float(_ssim_map(*np.moveaxis(m, -1, 0)).mean())
        return out.reshape(n, c).mean(dim=1)
    # a GPU: one 'valid' separable pass over the five maps of the whole batch
    smap = _ssim_map(*separable_fast(torch.stack([a, b, a * a, b * b, a * b]), taps))
    return smap.mean(dim=(-2, -1)).reshape(n, c).mean(dim=1)


def _ssim_map(mu_a, mu_b, eaa, ebb, eab):
    """Wang et al.'s SSIM map from the windowed moments (numpy arrays or tensors alike)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    saa, sbb, sab = eaa - mu_a**2, ebb - mu_b**2, eab - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
