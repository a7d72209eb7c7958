"""Separable filtering by shifted-slice sums: float64 conv2d has no fast CPU path, this does."""

from __future__ import annotations

import torch


def separable(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Correlate ``x`` [..., H, W] with ``outer(taps, taps)``, 'valid' region (no padding)."""
    k = taps.numel()
    h, w = x.shape[-2:]
    rows = sum(taps[i] * x[..., i:h - k + 1 + i, :] for i in range(k))
    return sum(taps[i] * rows[..., :, i:w - k + 1 + i] for i in range(k))
