"""Scoring a batch a few images at a time on the CPU.

The metrics are per image, and their passes over a batch of 256x256 images make temporaries of tens
of MiB each, far beyond the CPU's caches; a few images per pass keep them in cache and give the same
values bit for bit (``tests/test_metrics.py``). On a GPU the whole batch is one pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def in_passes(fn: Callable[..., torch.Tensor], tensors: tuple[torch.Tensor, ...], pixels: int,
              *args) -> torch.Tensor:
    """``fn(*tensors, *args)`` over slices of about ``pixels`` pixels (whole images, at least one) of the
    leading batch dimension, concatenated; one call on a device other than the CPU."""
    x = tensors[0]
    n = max(1, pixels // (x.shape[-2] * x.shape[-1])) if x.device.type == "cpu" else x.shape[0]
    if x.shape[0] <= n:
        return fn(*tensors, *args)
    return torch.cat([fn(*(t[i:i + n] for t in tensors), *args) for i in range(0, x.shape[0], n)])
