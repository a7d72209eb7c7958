"""Separable 'valid' filtering in float64 (float64 conv2d has no fast CPU path)."""

from __future__ import annotations

import torch


def separable(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Correlate ``x`` [..., H, W] with ``outer(taps, taps)``, 'valid' region (no padding), by shifted-slice
    sums. NIQE uses this one: its scores are ill-conditioned (a grid argmin per block), so the order of the
    float operations is kept as the scores were calibrated with."""
    k = taps.numel()
    h, w = x.shape[-2:]
    rows = sum(taps[i] * x[..., i:h - k + 1 + i, :] for i in range(k))
    return sum(taps[i] * rows[..., :, i:w - k + 1 + i] for i in range(k))


def separable_fast(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """:func:`separable` to float64 rounding (1e-16), faster on a GPU: shifted slices accumulated in place.
    SSIM's path on a GPU (its value does not move); on the CPU SSIM filters with OpenCV."""
    k = taps.numel()
    h, w = x.shape[-2:]
    rows = x[..., 0:h - k + 1, :] * taps[0]
    for i in range(1, k):
        rows.add_(x[..., i:h - k + 1 + i, :], alpha=float(taps[i]))
    out = rows[..., :, 0:w - k + 1] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., :, i:w - k + 1 + i], alpha=float(taps[i]))
    return out
