"""Independent references for the tests: Eq. 1 and PSNR-Y written again in numpy/scipy, from their
definitions (MATLAB's imresize algorithm, DAN/IKC's reflect-padded blur, MATLAB's rgb2ycbcr), without
calling blindsr_gym. A test that compares the package with these fails when the package is wrong, not
only when it changes."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def matlab_weights(in_len: int, scale: float, out_len: int, antialias: bool = True) -> list[tuple[list, list]]:
    """MATLAB imresize's ``contributions`` for one axis: per output pixel, its input indices (0-based, mirrored
    symmetrically at the edges) and normalised weights; a literal per-pixel transcription."""
    shrink = scale < 1 and antialias
    width = 4 / scale if shrink else 4
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        ws, js = [], []
        for j in range(left, left + math.ceil(width) + 2):
            d = u - j
            ws.append(scale * _cubic(scale * d) if shrink else _cubic(d))
            jj = j
            while jj < 1 or jj > in_len:  # symmetric: the edge pixel repeated
                jj = 1 - jj if jj < 1 else 2 * in_len + 1 - jj
            js.append(jj - 1)
        total = sum(ws)
        out.append((js, [w / total for w in ws]))
    return out


def matlab_imresize_1d(v, scale: float, out_len: int, antialias: bool = True) -> np.ndarray:
    """One 1-D signal resized as MATLAB's imresize (bicubic)."""
    return np.array([sum(w * v[j] for w, j in zip(ws, js, strict=True))
                     for js, ws in matlab_weights(len(v), scale, out_len, antialias)])


def _matrix(in_len: int, scale: float, out_len: int) -> np.ndarray:
    m = np.zeros((out_len, in_len))
    for i, (js, ws) in enumerate(matlab_weights(in_len, scale, out_len)):
        for j, w in zip(js, ws, strict=True):
            m[i, j] += w
    return m


def imresize_ref(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` of a float64 HxW or HxWxC image (rows first)."""
    h, w = img.shape[:2]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    mh, mw = _matrix(h, scale, oh), _matrix(w, scale, ow)
    return np.einsum("ih,hw...->iw...", mh, np.einsum("jw,hw...->hj...", mw, img))


def gaussian_ref(sigma: float, size: int = 21) -> np.ndarray:
    """The isotropic Gaussian kernel: exp(-r^2 / 2 sigma^2) on a size x size grid centred on the middle pixel."""
    r = np.arange(size) - size // 2
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return k / k.sum()


def eq1_ref(hr: np.ndarray, kernel: np.ndarray, scale: int = 4, noise: np.ndarray | None = None) -> np.ndarray:
    """Eq. 1 on a uint8 HxWx3 image, in float64: reflect-padded convolution with ``kernel`` per channel,
    MATLAB bicubic downscaling by ``scale``, ``noise`` (in 8-bit levels, HxWx3 of the LR) added, then
    8-bit quantisation (clamped, rounded half up). Returns uint8."""
    x = hr.astype(np.float64) / 255
    # numpy/torch 'reflect' padding (edge not repeated) is scipy.ndimage's 'mirror'
    blurred = np.stack([ndimage.convolve(x[..., c], kernel, mode="mirror") for c in range(x.shape[2])], axis=-1)
    lr = imresize_ref(blurred, 1 / scale)
    if noise is not None:
        lr = lr + noise / 255
    return np.floor(np.clip(lr, 0, 1) * 255 + 0.5).astype(np.uint8)


def y_levels(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y of a uint8 HxWx3 image, rounded to levels (as MATLAB does on uint8)."""
    v = img.astype(np.float64) / 255
    return np.floor(16 + 65.481 * v[..., 0] + 128.553 * v[..., 1] + 24.966 * v[..., 2] + 0.5)


def psnr_y_ref(sr: np.ndarray, hr: np.ndarray, border: int = 4) -> float:
    """PSNR on the Y channel of two uint8 HxWx3 images, ``border`` pixels cropped on each side."""
    a, b = y_levels(sr), y_levels(hr)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = np.mean((a - b) ** 2)
    return float(10 * np.log10(255**2 / mse))
