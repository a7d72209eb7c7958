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


def separable_fast(x: torch.Tensor, taps: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    """:func:`separable` to float64 rounding (1e-16), faster: scipy's line-by-line correlation on the CPU,
    shifted slices accumulated in place elsewhere (a GPU). For SSIM, whose value it does not move.
    ``backend``: ``"scipy"`` or ``"torch"`` (default: scipy on the CPU)."""
    k = taps.numel()
    h, w = x.shape[-2:]
    if (backend or ("scipy" if x.device.type == "cpu" else "torch")) == "scipy":
        from scipy.ndimage import correlate1d

        a, t = x.detach().numpy(), taps.detach().cpu().numpy()
        lo = (k - 1) // 2  # correlate1d centres the taps on each pixel; keep where the window is inside
        rows = correlate1d(a, t, axis=-2, mode="nearest")[..., lo:lo + h - k + 1, :]
        out = correlate1d(rows, t, axis=-1, mode="nearest")[..., lo:lo + w - k + 1]
        return torch.from_numpy(out).to(x.dtype)
    rows = x[..., 0:h - k + 1, :] * taps[0]
    for i in range(1, k):
        rows.add_(x[..., i:h - k + 1 + i, :], alpha=float(taps[i]))
    out = rows[..., :, 0:w - k + 1] * taps[0]
    for i in range(1, k):
        out.add_(rows[..., :, i:w - k + 1 + i], alpha=float(taps[i]))
    return out
