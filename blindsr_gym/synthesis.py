"""Synthesis of episodes and training pairs, batched on a device.

The HR images live on the device as uint8 tensors (:class:`DeviceImages`), crops are cut there, and
Eq. 1 degrades N samples in one pass (:func:`blindsr_gym.degradation.eq1`). The CPU only draws the random
numbers, from the callers' ``numpy.random.Generator`` objects and in the order the per-image code drew
them, so a batched env seeded ``s`` still reproduces single envs seeded ``s + i``.

Used by the environments (:mod:`blindsr_gym.envs.core`), the renderer trainer's and actor pre-training's
:class:`~blindsr_gym.renderers.train.SyntheticPairs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data import ImageSource
from .errors import InputError

__all__ = ["DeviceImages", "dihedral"]


class DeviceImages:
    """The images of an :class:`ImageSource` (mod-cropped as the source gives them) as uint8 HWC tensors
    on ``device``, loaded once. ``cut`` returns a batch of windows, on the device.

    ``max_bytes``: refuse a set larger than this (default: no limit on the CPU; on a GPU half of its
    free memory), so a data set that does not fit fails with a clear error at construction.
    """

    def __init__(self, source: ImageSource, device: torch.device | str = "cpu", max_bytes: int | None = None):
        self.device = torch.device(device)
        sizes = []
        self.images: list[torch.Tensor] = []
        total = 0
        budget = max_bytes
        if budget is None and self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free // 2
        for i in range(len(source)):
            img = source[i]
            total += img.nbytes
            if budget is not None and total > budget:
                raise InputError(f"the {len(source)} images do not fit in {budget / 2**30:.1f} GiB on {self.device} "
                                 f"(the first {i + 1} already take {total / 2**30:.1f} GiB); use a smaller "
                                 "data set or the CPU")
            self.images.append(torch.from_numpy(np.ascontiguousarray(img)).to(self.device))
            sizes.append(img.shape[:2])
        self.shapes = sizes

    def __len__(self) -> int:
        return len(self.images)

    def cut(self, index: Sequence[int], top: Sequence[int], left: Sequence[int], size: int) -> torch.Tensor:
        """uint8 ``[N, size, size, 3]``: window ``(top, left)`` of image ``index`` for each sample."""
        return torch.stack([self.images[i][t:t + size, lf:lf + size] for i, t, lf in zip(index, top, left,
                                                                                         strict=True)])


def dihedral(x: torch.Tensor, rot: Sequence[int], flip: Sequence[bool]) -> torch.Tensor:
    """Each sample of ``x [N, H, W, C]`` (square) rotated by ``rot[i]`` quarter turns (``np.rot90``'s sense)
    and then, when ``flip[i]``, mirrored left-right: the 8 symmetries of the square, batched by kind."""
    out = torch.empty_like(x)
    rot, flip = np.asarray(rot, dtype=np.int64) % 4, np.asarray(flip, dtype=bool)
    for r in range(4):
        for f in (False, True):
            sel = np.flatnonzero((rot == r) & (flip == f))
            if sel.size == 0:
                continue
            idx = torch.from_numpy(sel).to(x.device)
            y = torch.rot90(x.index_select(0, idx), r, dims=(1, 2))
            out[idx] = y.flip(2) if f else y
    return out
