"""NIQE (Mittal et al., IEEE SPL 2013), a batched torch port of the original MATLAB release.

It follows ``computequality.m`` step by step, with the official pristine model (``mu_prisparam``,
``cov_prisparam``) shipped in ``assets/niqe_pris_params.npz``:

1. the uint8 RGB image goes through MATLAB's ``rgb2gray`` (rounded to uint8) -- or, with
   ``color="y"``, the Y of ``rgb2ycbcr`` as the PIRM-2018 script ``calc_NIQE.m`` does;
2. it is cropped to a whole number of 96x96 blocks;
3. at two scales (the second from ``imresize(im, 0.5)``, bicubic with antialiasing, unrounded):
   MSCN coefficients with a 7x7 Gaussian window (sigma 7/6, replicate padding) and ``sigma + 1``,
   then per block (96 / scale pixels) the 18 AGGD features of ``computefeature.m``; the
   neighbour products use ``circshift`` inside each block;
4. ``nanmean`` / ``nancov`` (rows with a NaN dropped, N-1 normalisation) of the 36-D features,
   ``pinv`` of the averaged covariance, and the Mahalanobis-like distance.

Where it differs from pyiqa's ``niqe`` (which scores the calibration images of its own repository
within 0.03 of MATLAB, but not exactly): pyiqa converts with YIQ luma weights (0.299, 0.587, 0.114)
and rounds half to even, where MATLAB's ``rgb2gray`` uses (0.298936..., 0.587043..., 0.114020...)
and rounds half away from zero; pyiqa builds its AGGD shape grid with ``arange(0.2, 10.001, 0.001)``
accumulated in floating point, where MATLAB's colon operator builds 0.2:0.001:10 symmetrically. The
colour conversion is what moves the score: NIQE's MSCN step divides by ``sigma + 1``, so it is not
invariant to the luma weights. Everything runs in float64 as MATLAB does.
"""

from __future__ import annotations

import functools
import math
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from blindsr_gym.errors import InputError

from ..degradation import imresize
from ._filter import separable
from ._passes import in_passes
from .color import rgb_to_gray, rgb_to_y, to_levels

__all__ = ["niqe", "niqe_params", "MIN_SIZE"]

BLOCK = 96
#: Smallest image side NIQE accepts: two 96x96 blocks per side, so the covariance has >1 sample
#: at each scale. An SR output of a 48x48 LR patch at x4 is exactly this size.
MIN_SIZE = 2 * BLOCK


@functools.lru_cache(maxsize=1)
def niqe_params() -> dict[str, np.ndarray]:
    """The official NIQE pristine model: ``mu`` [36], ``cov`` [36, 36], ``window`` [7, 7] (float64)."""
    ref = resources.files("blindsr_gym") / "assets" / "niqe_pris_params.npz"
    with resources.as_file(ref) as p, np.load(p) as z:
        return {"mu": z["mu_pris_param"].reshape(-1).astype(np.float64),
                "cov": z["cov_pris_param"].astype(np.float64),
                "window": z["gaussian_window"].astype(np.float64)}


def _matlab_colon(a: float, step: float, b: float) -> np.ndarray:
    """MATLAB's ``a:step:b``: the first half counts up from a, the second half down from b."""
    n = int(math.floor((b - a) / step + 1e-10)) + 1
    k = np.arange(n, dtype=np.float64)
    out = a + k * step
    half = n // 2
    out[n - half:] = b - (n - 1 - k[n - half:]) * step
    return out


@functools.lru_cache(maxsize=1)
def _aggd_tables() -> tuple[np.ndarray, ...]:
    gam = _matlab_colon(0.2, 0.001, 10.0)
    g = np.vectorize(math.gamma)
    g1, g2, g3 = g(1 / gam), g(2 / gam), g(3 / gam)
    r_gam = g2**2 / (g1 * g3)
    if not np.all(np.diff(r_gam) > 0):  # the search below relies on it
        raise AssertionError("r(gamma) is not increasing on the grid")
    return gam, r_gam, np.sqrt(g1 / g3), g2 / g1


@functools.lru_cache(maxsize=8)
def _constants(device: torch.device) -> dict:
    """The pristine model, the window's taps and the AGGD tables as float64 tensors on ``device``, made once
    per device: on a GPU each copy from the host would synchronise the stream."""
    p = niqe_params()
    with torch.inference_mode(False):
        put = lambda a: torch.as_tensor(a, dtype=torch.float64).to(device)  # noqa: E731
        return {"taps": put(p["window"].sum(axis=1)),  # the window is outer(taps, taps)
                "mu": put(p["mu"]), "cov": put(p["cov"]), "tables": tuple(put(t) for t in _aggd_tables())}


def _aggd(v: torch.Tensor, tables) -> tuple[torch.Tensor, ...]:
    """``estimateaggdparam.m`` for each row of ``v`` [B, M]: (alpha, beta_l, beta_r, alpha index)."""
    gam, r_gam, sqrt_g1_g3, _ = tables
    r_max = _aggd_tables()[1][-1]  # the grid's last ratio, from the host's copy (reading the tensor would sync)
    neg, pos = v < 0, v > 0
    sq = v * v
    # mean over an empty selection is NaN in MATLAB; 0/0 gives the same here.
    left = torch.sqrt((sq * neg).sum(1) / neg.sum(1))
    right = torch.sqrt((sq * pos).sum(1) / pos.sum(1))
    gh = left / right
    rhat = v.abs().mean(1).pow(2) / sq.mean(1)
    rn = rhat * (gh.pow(3) + 1) * (gh + 1) / (gh.pow(2) + 1).pow(2)
    # argmin of (r_gam - rn)^2 over a strictly increasing grid: compare the two neighbours of rn.
    hi = torch.searchsorted(r_gam, rn.clamp(max=r_max)).clamp(1, r_gam.numel() - 1)
    lo = hi - 1
    idx = torch.where((r_gam[lo] - rn).pow(2) <= (r_gam[hi] - rn).pow(2), lo, hi)
    # MATLAB's min over an all-NaN (or all-inf) vector returns the first index.
    idx = torch.where(torch.isfinite(rn), idx, torch.zeros_like(idx))
    f = sqrt_g1_g3[idx]
    return gam[idx], left * f, right * f, idx


def _block_features(img: torch.Tensor, block: int, taps: torch.Tensor, tables,
                    fused: bool | None = None) -> torch.Tensor:
    """MSCN + ``computefeature.m`` on every ``block`` x ``block`` block: [N, blocks, 18].

    ``fused`` (default: on any device but the CPU): filter the image and its square in one pass, and fit the
    coefficients and their four neighbour products in one call of :func:`_aggd` (each row is fitted on its own),
    a third of the operations to launch; the same values, bit for bit on the CPU (``tests/test_metrics.py``).
    On the CPU the stacked copies cost more than the calls they save (``benchmarks/host_overhead.py``)."""
    fused = img.device.type != "cpu" if fused is None else fused
    n, c = img.shape[:2]
    pad = taps.numel() // 2
    # imfilter(..., 'replicate') with the 7x7 window, which is the outer product of ``taps``
    if fused:
        both = separable(F.pad(torch.cat([img, img * img], dim=1), (pad,) * 4, mode="replicate"), taps)
        mu, mu2 = both[:, :c], both[:, c:]
    else:
        mu = separable(F.pad(img, (pad,) * 4, mode="replicate"), taps)
        mu2 = separable(F.pad(img * img, (pad,) * 4, mode="replicate"), taps)
    sigma = torch.sqrt((mu2 - mu * mu).abs())
    mscn = (img - mu) / (sigma + 1)
    h, w = mscn.shape[-2:]
    b = mscn.reshape(n, h // block, block, w // block, block).permute(0, 1, 3, 2, 4)
    b = b.reshape(-1, block, block)  # [N*blocks, block, block]
    nb = b.shape[0]
    pairs = [b * torch.roll(b, shifts=shift, dims=(1, 2)) for shift in ((0, 1), (1, 0), (1, 1), (1, -1))]
    if fused:
        fits = [t.reshape(5, nb) for t in _aggd(torch.stack([b, *pairs]).reshape(5 * nb, -1), tables)]
        fits = [tuple(t[j] for t in fits) for j in range(5)]
    else:
        fits = [_aggd(v.reshape(nb, -1), tables) for v in (b, *pairs)]
    alpha, bl, br, _ = fits[0]
    feats = [alpha, (bl + br) / 2]
    g2_g1 = tables[3]
    for alpha, bl, br, idx in fits[1:]:
        feats += [alpha, (br - bl) * g2_g1[idx], bl, br]
    return torch.stack(feats, dim=1).reshape(n, -1, 18)


def _mvg_distance(feat: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    nan = torch.isnan(feat)
    # nanmean: per column, ignoring NaNs
    mu_d = torch.where(nan, 0, feat).sum(1) / (~nan).sum(1)
    # nancov: rows with any NaN removed, normalised by (rows - 1)
    valid = (~nan.any(-1, keepdim=True)).to(feat.dtype)
    cnt = valid.sum(1)  # [N, 1]
    x = torch.where(nan, 0, feat)
    xc = (x - (x * valid).sum(1, keepdim=True) / cnt.unsqueeze(-1)) * valid
    cov_d = xc.transpose(1, 2) @ xc / (cnt - 1).unsqueeze(-1)
    # MATLAB returns NaN when fewer than two complete rows remain (e.g. a flat image); pinv would
    # fail on the NaNs, so those images get NaN explicitly.
    ok = (cnt.reshape(-1) >= 2) & torch.isfinite(mu_d).all(-1) & torch.isfinite(cov_d).flatten(1).all(-1)
    cov_d = torch.where(ok[:, None, None], cov_d, 0)
    d = torch.where(ok[:, None], mu_p - mu_d, 0).unsqueeze(-1)  # [N, 36, 1]
    return torch.where(ok, torch.sqrt(_quadratic_form((cov_p + cov_d) / 2, d)), torch.nan)


def _quadratic_form(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``d' pinv(c) d`` for each symmetric ``c [N, K, K]`` and ``d [N, K, 1]``, as MATLAB's NIQE computes it.

    The pristine covariance is positive definite (smallest eigenvalue 7e-6) and the image's is positive
    semi-definite, so their mean is positive definite and ``pinv`` is the inverse: a Cholesky factor gives the
    same value to rounding (``tests/test_metrics.py`` holds it to numpy's pinv) at a fraction of the cost of
    the batched SVD behind ``pinv``, which dominated a NIQE env step on a GPU (docs/gpu/nvidia-h200/). A
    matrix whose factorisation fails falls back to ``pinv``.
    """
    chol, info = torch.linalg.cholesky_ex(c)
    y = torch.linalg.solve_triangular(chol, d, upper=False)
    q = y.square().sum((1, 2))
    bad = info != 0
    if bad.any():
        db = d[bad]
        q[bad] = (db.transpose(1, 2) @ torch.linalg.pinv(c[bad]) @ db).reshape(-1)
    return q


def niqe(x: torch.Tensor, crop_border: int = 0, color: str = "gray") -> torch.Tensor:
    """NIQE of float NCHW images in [0, 1] (RGB or 1-channel), lower is better; float64 ``[N]``.

    ``color``: ``"gray"`` (MATLAB ``rgb2gray``, the original release) or ``"y"`` (the Y of
    ``rgb2ycbcr``, as the PIRM-2018 perceptual-SR script). ``crop_border`` pixels are shaved from
    every edge first. Images must be at least 192x192 after the crop.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point() \
            or x.shape[1] not in (1, 3):
        raise InputError("niqe expects float images [N, 3 or 1, H, W] in [0, 1], got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if color not in ("gray", "y"):
        raise InputError(f"color must be 'gray' (MATLAB rgb2gray) or 'y' (rgb2ycbcr), got {color!r}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise InputError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    h, w = x.shape[-2] - 2 * crop_border, x.shape[-1] - 2 * crop_border
    if h < MIN_SIZE or w < MIN_SIZE:
        raise InputError(f"NIQE needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels (two 96x96 blocks "
                         f"per side), got {h}x{w}" + (f" after crop_border={crop_border}" if crop_border else "")
                         + "; at x4 that means LR inputs of at least 48x48")
    # crop first (border, then whole blocks): the colour conversion is pointwise
    x = x[..., crop_border:crop_border + h - h % BLOCK, crop_border:crop_border + w - w % BLOCK]
    return in_passes(_niqe, (x,), CPU_PASS_PIXELS, color)


#: Pixels per pass on the CPU: four 256x256 images, about the fastest of 1 to 64 per pass
#: (``python benchmarks/metrics.py --sweep-passes``; docs/experiments/2026-11-27_cpu_malloc.md).
CPU_PASS_PIXELS = 1 << 18
#: :func:`_block_features`' ``fused``: None chooses by device (fused off the CPU); ``benchmarks/host_overhead.py``
#: sets True and False to time both on one device.
FUSED_FEATURES: bool | None = None


def _niqe(x: torch.Tensor, color: str) -> torch.Tensor:
    if x.shape[1] == 3:
        img = rgb_to_gray(x) if color == "gray" else rgb_to_y(x)
    else:
        img = to_levels(x)
    k = _constants(img.device)
    taps, tables = k["taps"], k["tables"]
    f1 = _block_features(img, BLOCK, taps, tables, FUSED_FEATURES)
    f2 = _block_features(imresize(img, 0.5), BLOCK // 2, taps, tables, FUSED_FEATURES)
    feat = torch.cat([f1, f2], dim=-1)
    mu_p = k["mu"].expand(feat.shape[0], -1)
    cov_p = k["cov"].expand(feat.shape[0], -1, -1)
    return _mvg_distance(feat, mu_p, cov_p)
