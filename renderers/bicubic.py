"""A parameter-free stand-in renderer for tests and for environments without trained weights.

``BicubicRenderer`` upsamples with MATLAB bicubic, then sharpens by an amount that depends on the
code: ``sr = up + a(code) * (up - blur3x3(up))`` with ``a = 1 + tanh(code . w)`` and a fixed ``w``.
So different actions give different images and rewards, which is what environment tests need. It
is not an SR method; with ``sharpen=False`` it ignores the code and is plain bicubic interpolation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.degradation import imresize
from blindsr_gym.errors import InputError
from blindsr_gym.kernels import KernelCodec

from .amnet import normalized_code, register_code_box


class BicubicRenderer(nn.Module):
    arch = "bicubic"

    def __init__(self, scale: int = 4, code_len: int = 15, sharpen: bool = True, codec: KernelCodec | None = None):
        super().__init__()
        if scale not in (2, 3, 4):
            raise InputError(f"scale must be 2, 3 or 4, got {scale!r}")
        codec = codec if codec is not None else KernelCodec.default()
        if codec.length != code_len:
            raise InputError(f"codec has length {codec.length} but code_len={code_len}")
        self.codec, self.scale, self.code_len, self.sharpen = codec, scale, code_len, sharpen
        self.config = dict(scale=scale, code_len=code_len, sharpen=sharpen)
        register_code_box(self, codec)
        w = torch.linspace(1.0, -1.0, code_len) / code_len ** 0.5
        self.register_buffer("direction", w)
        self.register_buffer("box", torch.full((3, 1, 3, 3), 1 / 9))

    def forward(self, lr: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W], got {tuple(lr.shape)}")
        if code.dim() != 2 or code.shape != (lr.shape[0], self.code_len):
            raise InputError(f"code must be [N={lr.shape[0]}, {self.code_len}], got {tuple(code.shape)}")
        up = imresize(lr, float(self.scale))
        if self.sharpen:
            k = normalized_code(self, code, lr.dtype)
            amount = 1 + torch.tanh(k @ self.direction)
            smooth = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="replicate"), self.box, groups=3)
            up = up + amount[:, None, None, None] * (up - smooth)
        return up.clamp(0, 1)
