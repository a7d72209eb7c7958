"""DAN v1 (Luo et al., NeurIPS 2020, "Unfolding the Alternating Optimization for Blind Super Resolution").

A Restorer R(LR, code) and an Estimator E(SR, LR) alternate for ``loops`` iterations, starting
from the code of a delta kernel: ``sr_i = R(lr, c_{i-1})``, ``c_i = E(sr_i, lr)``; both are trained
end to end with L1 on every ``sr_i`` and on every ``c_i`` (against the true kernel's code).

Layout, after the paper and its official configuration (setting 1, x4: nf 64, 40 conditional
residual blocks, code length 10, 4 loops), re-implemented here:

* **Conditional residual block (CRB)**: ``f + CA(conv3x3(lrelu(conv3x3(concat(f, c)))))``; the
  first conv keeps ``nf + nc`` channels, the second maps to ``nf``; CA is channel attention
  (reduction 16, LeakyReLU 0.2). The code ``c`` enters the Restorer as a constant map.
* **Restorer**: conv3x3 head, 40 CRBs, a conv3x3 "fusion", and x4 upsampling by two
  conv3x3 (nf -> 4 nf) + PixelShuffle(2) stages, then conv3x3 to RGB (one stage of s^2 for x2/x3).
* **Estimator**: a 1x1 conv on the LR and a 9x9 stride-``scale`` conv on the SR (each to nf/2),
  5 CRBs that condition the LR features on the SR features, a conv3x3 to the code, global average
  pooling.

4,329,511 parameters at x4 (``tests/test_dan.py`` pins it; DESIGN.md measured the official
architecture at the same number) and 78.1 G MACs at a 64x64 LR with 4 loops. Codes come from a PCA
``KernelCodec`` of length 10 (the official code has no mean term; ours does, which changes nothing
the network cannot absorb in its biases).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.errors import InputError
from blindsr_gym.kernels import KernelCodec
from blindsr_gym.layers import ChannelAttention


class CRB(nn.Module):
    """Conditional residual block: features ``f`` (nf1 channels) conditioned on ``c`` (nf2 channels)."""

    def __init__(self, nf1: int, nf2: int):
        super().__init__()
        self.conv1 = nn.Conv2d(nf1 + nf2, nf1 + nf2, 3, padding=1)
        self.conv2 = nn.Conv2d(nf1 + nf2, nf1, 3, padding=1)
        self.ca = ChannelAttention(nf1, 16, negative_slope=0.2)

    def forward(self, f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return f + self.ca(self.conv2(F.leaky_relu(self.conv1(torch.cat([f, c], 1)), 0.2)))


class Restorer(nn.Module):
    def __init__(self, scale: int = 4, nf: int = 64, num_blocks: int = 40, code_len: int = 10):
        super().__init__()
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.blocks = nn.ModuleList(CRB(nf, code_len) for _ in range(num_blocks))
        self.fusion = nn.Conv2d(nf, nf, 3, padding=1)
        if scale == 4:
            up = [nn.Conv2d(nf, 4 * nf, 3, padding=1), nn.PixelShuffle(2),
                  nn.Conv2d(nf, 4 * nf, 3, padding=1), nn.PixelShuffle(2)]
        else:
            up = [nn.Conv2d(nf, scale * scale * nf, 3, padding=1), nn.PixelShuffle(scale)]
        self.upsample = nn.Sequential(*up, nn.Conv2d(nf, 3, 3, padding=1))

    def forward(self, lr: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        cmap = code[:, :, None, None].expand(-1, -1, *lr.shape[-2:])
        f = self.head(lr)
        for block in self.blocks:
            f = block(f, cmap)
        return self.upsample(self.fusion(f))


class Estimator(nn.Module):
    def __init__(self, scale: int = 4, nf: int = 64, num_blocks: int = 5, code_len: int = 10):
        super().__init__()
        self.head_lr = nn.Conv2d(3, nf // 2, 1)
        self.head_sr = nn.Conv2d(3, nf // 2, 9, stride=scale, padding=4)
        self.blocks = nn.ModuleList(CRB(nf // 2, nf // 2) for _ in range(num_blocks))
        self.out = nn.Conv2d(nf // 2, code_len, 3, padding=1)

    def forward(self, sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        f, g = self.head_lr(lr), self.head_sr(sr)
        if g.shape[-2:] != f.shape[-2:]:
            raise InputError(f"SR {tuple(sr.shape[-2:])} is not the LR {tuple(lr.shape[-2:])} times the scale")
        for block in self.blocks:
            f = block(f, g)
        return self.out(f).mean(dim=(2, 3))


class DAN(nn.Module):
    """``forward(lr) -> (srs, codes)``: the SR image and the code after every loop (the last is the answer)."""

    arch = "dan"
    conditional = False  # a blind method: forward(lr), not a renderer G(lr, code)

    def __init__(self, scale: int = 4, nf: int = 64, num_blocks: int = 40, code_len: int = 10, loops: int = 4,
                 codec: KernelCodec | None = None):
        super().__init__()
        if codec is None:
            codec = KernelCodec.default(21, code_len)
        if codec.length != code_len:
            raise InputError(f"codec has length {codec.length}, DAN was asked for code_len={code_len}")
        if not isinstance(loops, int) or loops < 1:
            raise InputError(f"loops must be a positive integer, got {loops!r}")
        self.codec, self.scale, self.loops = codec, scale, loops
        self.config = dict(scale=scale, nf=nf, num_blocks=num_blocks, code_len=code_len, loops=loops)
        self.restorer = Restorer(scale, nf, num_blocks, code_len)
        self.estimator = Estimator(scale, nf, 5, code_len)
        delta = torch.zeros(1, codec.size, codec.size)
        delta[0, codec.size // 2, codec.size // 2] = 1
        self.register_buffer("init_code", codec.encode(delta)[0])

    def forward(self, lr: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        code = self.init_code.expand(lr.shape[0], -1)
        srs, codes = [], []
        for _ in range(self.loops):
            sr = self.restorer(lr, code.detach())
            code = self.estimator(sr.detach(), lr)
            srs.append(sr)
            codes.append(code)
        return srs, codes

    @torch.no_grad()
    def super_resolve(self, lr: torch.Tensor) -> torch.Tensor:
        """The final SR image, clamped to [0, 1]."""
        return self.forward(lr)[0][-1].clamp(0, 1)
