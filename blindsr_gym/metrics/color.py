"""MATLAB's colour conversions as the SR and NIQE reference code applies them to uint8 images.

Inputs are float NCHW RGB in [0, 1]; they are first put on 8-bit levels (as reading a saved PNG
would), converted in float64, and rounded half away from zero like MATLAB's uint8 arithmetic.
Outputs are float64 ``[N, 1, H, W]`` in 8-bit units.
"""

from __future__ import annotations

import functools

import torch

from blindsr_gym.errors import InputError

from ..degradation import to_levels as _levels

__all__ = ["to_levels", "rgb_to_y", "rgb_to_y_levels", "rgb_to_gray"]

#: MATLAB rgb2ycbcr, luma row (input in [0, 1], output in [16, 235]).
YCBCR_Y = (65.481, 128.553, 24.966)
#: MATLAB rgb2gray: first row of inv of the NTSC (YIQ) matrix, as MATLAB computes it.
GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def _round(x: torch.Tensor) -> torch.Tensor:
    """Round half away from zero (MATLAB), for non-negative x."""
    return torch.floor(x + 0.5)


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] to float64 8-bit levels 0..255 (rounded in x's own dtype, as a saved uint8 image)."""
    return _levels(x).to(torch.float64)


def _check_rgb(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"expected RGB images [N, 3, H, W], got {getattr(x, 'shape', type(x))}")
    return x


def rgb_to_y(x: torch.Tensor, rounded: bool = True) -> torch.Tensor:
    """Y of MATLAB ``rgb2ycbcr`` applied to the uint8 image: ``16 + 65.481 R + 128.553 G + 24.966 B``."""
    if rounded:
        return rgb_to_y_levels(x).to(torch.float64)
    v = to_levels(_check_rgb(x)) / 255
    return 16 + YCBCR_Y[0] * v[:, 0:1] + YCBCR_Y[1] * v[:, 1:2] + YCBCR_Y[2] * v[:, 2:3]


@functools.lru_cache(maxsize=4)
def _y_table(device: torch.device) -> torch.Tensor:
    """The rounded Y of every 8-bit (R, G, B), uint8 ``[2**24]`` indexed by ``R << 16 | G << 8 | B``: the float64
    formula of :func:`rgb_to_y` evaluated once per colour, in the same order, so a look-up equals it exactly."""
    v = torch.arange(256, dtype=torch.float64) / 255
    r, g, b = (c * v for c in YCBCR_Y)
    y = 16 + r[:, None, None] + g[None, :, None] + b[None, None, :]  # ((16 + r) + g) + b, as the formula
    return _round(y).to(torch.uint8).reshape(-1).to(device)


def rgb_to_y_levels(x: torch.Tensor, look_up_all: bool | None = None) -> torch.Tensor:
    """The rounded Y of :func:`rgb_to_y` as uint8 ``[N, 1, H, W]``, exactly, without a float64 pass.

    Y is computed in float32, whose error (< 1e-4 level) can only change the rounding of a value within
    1e-3 of a half level; those few pixels are looked up in the exact table of every colour.
    ``look_up_all`` (default: on any device but the CPU): index the table at every pixel and keep the near
    ones, instead of first asking whether there are any, which waits for the device.
    """
    lv = _check_rgb(x).float().clamp(0, 1).mul_(255).add_(0.5).floor_()  # 8-bit levels, as to_levels
    y = lv[:, 0:1] * (YCBCR_Y[0] / 255)
    y.add_(lv[:, 1:2], alpha=YCBCR_Y[1] / 255).add_(lv[:, 2:3], alpha=YCBCR_Y[2] / 255).add_(16.5)  # Y + 0.5
    out = torch.floor(y)
    frac = y.sub_(out)  # in [0, 1): a value near 0 or 1 is near a half level of Y
    near = (frac < 1e-3) | (frac > 1 - 1e-3)
    if x.device.type != "cpu" if look_up_all is None else look_up_all:
        li = lv.to(torch.int32)
        idx = (li[:, 0:1] << 16) | (li[:, 1:2] << 8) | li[:, 2:3]
        return torch.where(near, _y_table(x.device)[idx].float(), out).to(torch.uint8)
    if bool(near.any()):
        li = lv.to(torch.int32)
        idx = (li[:, 0:1] << 16) | (li[:, 1:2] << 8) | li[:, 2:3]
        out[near] = _y_table(x.device)[idx[near]].float()
    return out.to(torch.uint8)


def rgb_to_gray(x: torch.Tensor, rounded: bool = True) -> torch.Tensor:
    """MATLAB ``rgb2gray`` applied to the uint8 image."""
    v = to_levels(_check_rgb(x))
    g = GRAY[0] * v[:, 0:1] + GRAY[1] * v[:, 1:2] + GRAY[2] * v[:, 2:3]
    return _round(g) if rounded else g
