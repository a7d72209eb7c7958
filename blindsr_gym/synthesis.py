"""Synthesis of episodes and training pairs, batched on a device.

The HR images live on the device as uint8 tensors (:class:`DeviceImages`), crops are cut there, and
Eq. 1 degrades N samples in one pass (:func:`blindsr_gym.degradation.eq1`). The CPU only draws the random
numbers, from the callers' ``numpy.random.Generator`` objects and in the order the per-image code drew
them, so a batched env seeded ``s`` still reproduces single envs seeded ``s + i``.

Used by the environments (:mod:`blindsr_gym.envs.core`) and, through :class:`SyntheticPairs` (the
``(lr, code, hr)`` training batches), by every trainer: the renderer trainer, actor pre-training and KENet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data import ImageSource
from .degradation import blur, degrade
from .errors import InputError
from .kernels import KernelCodec, get_family, isotropic_gaussian

__all__ = ["DeviceImages", "dihedral", "SyntheticPairs", "augment", "widen_kernels"]


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


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 flips / 90° rotations of an HWC image."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    img = np.rot90(img, k)
    return np.ascontiguousarray(img[:, ::-1] if flip else img)


def widen_kernels(kernels: torch.Tensor, widths) -> torch.Tensor:
    """Each ``[l, l]`` kernel convolved with an isotropic Gaussian of its own width (HR pixels), on the same
    ``l x l`` support and renormalised to sum 1: a Gaussian of width s becomes one of sqrt(s^2 + w^2)."""
    n, size = kernels.shape[0], kernels.shape[-1]
    widths = np.broadcast_to(np.asarray(widths, dtype=np.float64), (n,))
    g = isotropic_gaussian(widths, size).to(kernels)  # [n, l, l]
    out = F.conv2d(kernels[None].float(), g.float().flip(-1, -2)[:, None], padding=size // 2, groups=n)[0]
    return (out / out.sum(dim=(-1, -2), keepdim=True)).to(kernels.dtype)


class SyntheticPairs:
    """Draws ``(lr, code, hr)`` training batches: HR crops, kernels from ``family``, Eq. 1 degradation.

    ``soft_hr`` > 0 softens HR crops first (each with probability ``soft_p``) with an isotropic Gaussian of
    width drawn uniformly from ``[0, soft_hr]`` HR pixels, as if the photograph were itself soft (Set14's
    foreman): the code stays the degradation kernel's, so an estimator learns that part of the LR image's
    blur may be the content's. The returned ``hr`` is the softened crop.

    ``code_blur`` > 0 is the renderer's side of the same ambiguity: with probability ``code_blur_p`` the
    returned code is that of the kernel convolved with a Gaussian of width U(0, ``code_blur``) HR pixels (a
    kernel wider than the one that made the LR image, as an estimator reads a soft photograph), while the
    LR image and the HR target are unchanged, so a renderer learns not to over-sharpen on an over-estimate.
    ``kernels`` (``with_kernels``) are always the true ones.
    """

    def __init__(self, source: ImageSource, codec: KernelCodec, family="isotropic", scale: int = 4,
                 patch: int = 64, noise: float = 0.0, soft_hr: float = 0.0, soft_p: float = 1.0,
                 code_blur: float = 0.0, code_blur_p: float = 0.0):
        if not (math.isfinite(soft_hr) and soft_hr >= 0):
            raise InputError(f"soft_hr must be >= 0 (HR pixels), got {soft_hr!r}")
        if not 0 <= soft_p <= 1:
            raise InputError(f"soft_p must be a probability in [0, 1], got {soft_p!r}")
        self.source, self.codec, self.scale, self.patch, self.noise = source, codec, scale, patch, noise
        if not (math.isfinite(code_blur) and code_blur >= 0):
            raise InputError(f"code_blur must be >= 0 (HR pixels), got {code_blur!r}")
        if not 0 <= code_blur_p <= 1:
            raise InputError(f"code_blur_p must be a probability in [0, 1], got {code_blur_p!r}")
        self.soft_hr, self.soft_p = soft_hr, soft_p
        self.code_blur, self.code_blur_p = code_blur, code_blur_p
        self.family = get_family(family, size=codec.size) if isinstance(family, str) else family
        side = patch * scale
        self.shapes = [source[i].shape[:2] for i in range(len(source))]
        self.eligible = [i for i, s in enumerate(self.shapes) if min(s) >= side]
        self._images: dict[torch.device, DeviceImages] = {}
        if not self.eligible:
            raise InputError(f"no training image is at least {side}x{side} (LR patch {patch} x scale {scale})")
        self.skipped = len(source) - len(self.eligible)

    def sample(self, rng: np.random.Generator, n: int, device: torch.device | str = "cpu", with_kernels: bool = False):
        """``(lr, code, hr)``, and the kernels ``[n, l, l]`` last when ``with_kernels``."""
        side = self.patch * self.scale
        device = torch.device(device)
        if device not in self._images:  # the images move to the training device once
            self._images[device] = DeviceImages(self.source, device)
        idx = rng.choice(self.eligible, size=n)
        tops, lefts, rots, flips = [], [], [], []
        for i in idx:  # augment()'s draws, per sample after its window's
            _, top, left = self.source.random_window(rng, side, int(i), shape=self.shapes[i])
            tops.append(top), lefts.append(left)
            rots.append(int(rng.integers(4))), flips.append(bool(rng.integers(2)))
        crops = dihedral(self._images[device].cut(idx.tolist(), tops, lefts, side), rots, flips)
        hr = crops.permute(0, 3, 1, 2).float().div_(255)  # cut and degraded where the model trains
        kernels = self.family.sample(rng, n)
        if self.soft_hr > 0:  # drawn after the kernels: runs without it keep their random stream
            widths = rng.uniform(0, self.soft_hr, n) * (rng.random(n) < self.soft_p)
            widths = np.maximum(widths, 0.1)  # 0.1: a delta on the pixel grid
            hr = blur(hr, isotropic_gaussian(widths, 2 * math.ceil(3 * self.soft_hr) + 1).to(hr.device))
        lr = degrade(hr, kernels, self.scale)
        if self.noise > 0:  # per-sample sigma in [0, noise]: add on the un-quantised blur+resize
            sig = torch.from_numpy(rng.uniform(0, self.noise, n).astype(np.float32))
            noise = torch.from_numpy(rng.standard_normal(lr.shape, dtype=np.float32)) * sig[:, None, None, None]
            lr = lr + noise.to(lr.device) / 255
            lr = (lr * 255).round().clamp(0, 255) / 255
        shown = kernels
        if self.code_blur > 0 and self.code_blur_p > 0:  # drawn last: runs without it keep their stream
            widths = rng.uniform(0, self.code_blur, n) * (rng.random(n) < self.code_blur_p)
            shown = widen_kernels(kernels, np.maximum(widths, 0.1))
        code = self.codec.encode(shown)
        if with_kernels:
            return lr.to(device), code.to(device), hr.to(device), kernels.to(device)
        return lr.to(device), code.to(device), hr.to(device)
