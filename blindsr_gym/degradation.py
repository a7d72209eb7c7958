"""The degradation model of Eq. 1: ``LR = quantise((HR conv k) downscaled by s [+ noise])``.

Tensors are float NCHW in [0, 1]. ``imresize`` is MATLAB's ``imresize`` with bicubic interpolation
(a = -0.5) and antialiasing; it is separable, so each axis is one matrix product with a weight matrix
built once per (length, scale) and cached.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from blindsr_gym.errors import InputError

__all__ = ["imresize", "blur", "degrade", "eq1", "quantize", "to_levels"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + \
        (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@functools.lru_cache(maxsize=256)
def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """Dense [out_len, in_len] float64 matrix of MATLAB's ``contributions`` for one axis.

    Follows MATLAB's imresize: output pixel x (1-based) samples input coordinate
    ``u = x/scale + 0.5*(1 - 1/scale)``; when shrinking with antialiasing the kernel is stretched
    by 1/scale; weights are normalised per output pixel; taps outside the image are mirrored
    (symmetric padding, edge pixel repeated).
    """
    if scale < 1 and antialias:
        kernel = lambda t: scale * _cubic(scale * t)  # noqa: E731
        width = 4.0 / scale
    else:
        kernel, width = _cubic, 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # Mirror indices into [1, in_len]: the sequence 1..n, n..1 repeats.
    aux = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    idx = aux[np.mod(idx.astype(np.int64) - 1, aux.size)] - 1
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), taps), idx.reshape(-1)), w.reshape(-1))
    return m


def _matrix(in_len: int, out_len: int, scale: float, antialias: bool, like: torch.Tensor) -> torch.Tensor:
    if like.device.type == "cpu":
        m = _resize_matrix(in_len, out_len, scale, antialias)  # cached: never modified in place
        return torch.from_numpy(m).to(dtype=like.dtype)
    return _device_matrix(in_len, out_len, scale, antialias, like.dtype, like.device)


@functools.lru_cache(maxsize=64)
def _device_matrix(in_len: int, out_len: int, scale: float, antialias: bool, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """The matrix on an accelerator, copied there once: a copy per call would synchronise the stream."""
    with torch.inference_mode(False):  # usable in autograd too, whatever mode fills the cache
        return torch.from_numpy(_resize_matrix(in_len, out_len, scale, antialias)).to(dtype=dtype, device=device)


def _check_image(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (float NCHW in [0, 1]), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}; "
                        "convert uint8 images with blindsr_gym.utils.to_tensor")
    if x.dim() != 4:
        raise InputError(f"{name} must be NCHW (4-D), got shape {tuple(x.shape)}")
    return x


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` for float tensors ``[..., H, W]`` (batched, any device).

    Give either ``scale`` (output size ``ceil(scale * input)``, as MATLAB) or ``size = (H', W')``.
    Computed in ``x``'s dtype; no rounding or clamping (MATLAB does neither for floating input).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError("x must be a floating-point tensor of shape [..., H, W]")
    h, w = x.shape[-2:]
    if (scale is None) == (size is None):
        raise InputError("give exactly one of scale or size")
    if scale is not None:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a positive number, got {scale!r}")
        sh = sw = float(scale)
        oh, ow = math.ceil(sh * h), math.ceil(sw * w)
    else:
        oh, ow = (int(v) for v in size)
        if oh < 1 or ow < 1:
            raise InputError(f"size must be positive, got {size!r}")
        sh, sw = oh / h, ow / w
    mh = _matrix(h, oh, sh, antialias, x)
    mw = _matrix(w, ow, sw, antialias, x)
    # MATLAB resizes the axis with the smaller scale first (rows first on a tie).
    if sw < sh:
        return mh @ (x @ mw.T)
    return (mh @ x) @ mw.T


def blur(x: torch.Tensor, kernels: torch.Tensor, method: str = "direct") -> torch.Tensor:
    """Convolve each image of ``x`` [N, C, H, W] with its kernel, reflect-padded (IKC/DAN).

    ``kernels``: one ``[k, k]`` for all images, or ``[N, k, k]``; k odd. A true convolution (the
    kernel is flipped); the Gaussian families are point-symmetric, so it equals correlation there.
    ``method``: ``"direct"`` (a grouped convolution), or ``"fft"`` (the same linear convolution through
    real FFTs of the padded images; equal to float rounding). On a GPU the direct path runs PyTorch's generic
    depthwise kernel; ``benchmarks/blur_speed.py`` compares both with :func:`eq1`'s separable path on a device.
    """
    if method not in ("direct", "fft"):
        raise InputError(f"method must be 'direct' or 'fft', got {method!r}")
    x = _check_image(x)
    kernels = torch.as_tensor(kernels, dtype=x.dtype, device=x.device)
    n, c, h, w = x.shape
    if kernels.dim() == 2:
        kernels = kernels.expand(n, *kernels.shape)
    if kernels.dim() != 3 or kernels.shape[0] != n or kernels.shape[1] != kernels.shape[2]:
        raise InputError(f"kernels must be [k, k] or [{n}, k, k] for {n} images, got {tuple(kernels.shape)}")
    k = kernels.shape[-1]
    if k % 2 == 0:
        raise InputError(f"kernel size must be odd, got {k}")
    p = k // 2
    if p >= min(h, w):
        raise InputError(f"images of {h}x{w} are too small for reflect padding by {p} (kernel {k}x{k})")
    xp = F.pad(x.reshape(1, n * c, h, w), (p, p, p, p), mode="reflect")
    if method == "fft":
        size = (h + 2 * p, w + 2 * p)
        spec = torch.fft.rfft2(xp.reshape(n, c, *size)) * torch.fft.rfft2(kernels, s=size)[:, None]
        # the circular convolution equals the linear one where it does not wrap: rows and columns 2p onward
        return torch.fft.irfft2(spec, s=size)[..., 2 * p:, 2 * p:].contiguous()
    weight = kernels.flip(-1, -2).repeat_interleave(c, dim=0).unsqueeze(1)  # [N*C, 1, k, k]
    return F.conv2d(xp, weight, groups=n * c).reshape(n, c, h, w)


def _blur_downscale_separable(hr: torch.Tensor, taps: torch.Tensor, scale: int) -> torch.Tensor:
    x = _check_image(hr, "hr")
    n, _, h, w = x.shape
    if taps.dim() != 2 or taps.shape[0] != n or taps.shape[1] % 2 == 0:
        raise InputError(f"taps must be [{n}, k] with k odd, got {tuple(taps.shape)}")
    if taps.shape[1] // 2 >= min(h, w):
        raise InputError(f"images of {h}x{w} are too small for reflect padding by {taps.shape[1] // 2}")
    ah = _axis_maps(taps, h, scale)  # [N, h / scale, h]
    aw = ah if w == h else _axis_maps(taps, w, scale)
    with torch.autocast(x.device.type, enabled=False):
        return (ah[:, None].to(x.dtype) @ x) @ aw[:, None].to(x.dtype).transpose(-1, -2)


def _axis_maps(taps: torch.Tensor, length: int, scale: int) -> torch.Tensor:
    """``[N, ceil(length / scale), length]`` float64: each image's blur-then-downscale along one axis,
    ``sum_t taps[:, t] * (M P_t)`` with the cached ``M P_t`` (M: MATLAB's resize matrix; P_t: the reflect-padded
    shift that brings input pixel ``i + (k - 1 - t) - k // 2`` to output ``i``, tap t of a true convolution)."""
    mp = _shifted_resize(length, taps.shape[1], scale, taps.device)
    return torch.einsum("nt,toj->noj", taps.to(torch.float64), mp)


@functools.lru_cache(maxsize=16)
def _shifted_resize(length: int, k: int, scale: int, device: torch.device) -> torch.Tensor:
    out_len = math.ceil(length / scale)
    m = _resize_matrix(length, out_len, 1.0 / scale, True)  # [out, length]
    src = np.arange(length)[:, None] + (k - 1 - np.arange(k))[None, :] - k // 2  # [length, k]
    src = np.abs(src)  # F.pad's "reflect": -i for i < 0, 2 (L - 1) - i past the end
    src = np.where(src > length - 1, 2 * (length - 1) - src, src)
    mp = np.zeros((k, out_len, length))
    for t in range(k):
        np.add.at(mp[t].T, src[:, t], m.T)  # column i of M lands on the input pixel tap t reads
    with torch.inference_mode(False):
        return torch.from_numpy(mp).to(device)


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] to 8-bit levels 0..255 in x's dtype: clamped, rounded half up (MATLAB's im2uint8)."""
    return torch.floor(x.clamp(0, 1) * 255 + 0.5)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels and back to [0, 1] (what saving as uint8 does)."""
    return to_levels(x) / 255


def degrade(hr: torch.Tensor, kernels: torch.Tensor, scale: int = 4, noise_sigma: float = 0.0,
            rng: np.random.Generator | torch.Generator | None = None) -> torch.Tensor:
    """Eq. 1: blur ``hr`` with ``kernels``, bicubic-downscale by ``scale``, add noise, quantise.

    ``hr``: float NCHW in [0, 1]; ``kernels``: ``[k, k]`` or ``[N, k, k]``; ``noise_sigma``: std of
    additive white Gaussian noise in 8-bit levels (0-255), drawn from ``rng`` (required when > 0).
    Returns LR float NCHW in [0, 1] on 8-bit levels, ``ceil(H/scale) x ceil(W/scale)``.
    """
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise InputError(f"scale must be a positive integer, got {scale!r}")
    if not (math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise InputError(f"noise_sigma must be >= 0 (8-bit levels), got {noise_sigma!r}")
    noise = None
    if noise_sigma > 0:
        shape = (hr.shape[0], hr.shape[1], math.ceil(hr.shape[2] / scale), math.ceil(hr.shape[3] / scale))
        if isinstance(rng, np.random.Generator):
            noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
        elif isinstance(rng, torch.Generator):
            noise = torch.randn(shape, generator=rng, device=rng.device, dtype=torch.float32)
        else:
            raise TypeError("noise_sigma > 0 needs rng: a numpy.random.Generator or torch.Generator")
        noise = noise.to(device=hr.device, dtype=hr.dtype) * (noise_sigma / 255.0)
    return eq1(hr, kernels, scale, noise)


def eq1(hr: torch.Tensor, kernels: torch.Tensor, scale: int, noise: torch.Tensor | None = None,
        taps: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 1 for a batch, the one implementation every caller uses: blur each image with its kernel,
    MATLAB bicubic downscaling by ``scale``, add ``noise`` (already in [0, 1] units, the LR's shape), and
    quantise to 8 bits. ``degrade`` draws the noise; the batched env and trainers draw it per sample.

    ``taps`` ``[N, k]``: each kernel's 1-D factors, when it is separable (``kernels[i] = outer(taps[i],
    taps[i])``, as every isotropic Gaussian: :func:`~blindsr_gym.kernels.isotropic_taps`). The blur and the
    downscaling are then one linear map per axis, ``A = M B`` (M the resize matrix, B the reflect-padded 1-D
    convolution), applied as two matrix products per image: the same values to float rounding (within 1e-5 of
    the two-step path; the 8-bit levels agree in more than 99.9% of pixels and never by more than one), with a
    fraction of the work of a 2-D blur at full resolution."""
    if taps is not None:
        lr = _blur_downscale_separable(hr, taps, scale)
    else:
        lr = imresize(blur(hr, kernels), 1.0 / scale)
    if noise is not None:
        lr = lr + noise
    return quantize(lr)
