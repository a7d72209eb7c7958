"""KENet: supervised blur-kernel estimation with the adaptive attention loss (Cao et al.), a baseline.

**Network.** A 3x3 conv (3 -> 64) with ReLU and a residual block; three stages, each a 2x2 max-pool,
a 3x3 conv to ``64 * s`` channels (s = 1, 2, 3) with ReLU, and a residual block (two 3x3 convs,
identity skip); global average pooling; fully connected layers 192 -> 1024 -> 1024 -> l*l with ReLU
between them; a softmax over the l*l outputs, so the estimate is a non-negative kernel summing to 1.
With l = 21 it has 3,140,025 parameters and costs 0.58 G MACs on a 64x64 LR image.

**Adaptive attention loss** (that paper's Eq. 7-8)::

    L_att = rho0 * ||k_hat - k||_1 + rho1 * ||(k_hat - k) * M(k, lambda1)||_1 + rho2 * ||(k_hat - k) * M(k, lambda2)||_1

with ``M(k, lambda) = [k >= lambda * max(k)]``, the support of the true kernel ``k`` above a fraction
``lambda`` of its peak. Defaults: lambda1 = 0.01, lambda2 = 0.1, rho0 = 0.01, rho1 = 0.1, rho2 = 1,
so the loss weighs the kernel's core most, its visible support next and the whole window least.
The paper writes the masked terms as ``||k*_lambda - k||_1``; we read ``k*_lambda`` as the estimate
restricted to the attention region and restrict the true kernel to it too, so that the loss is zero
exactly at ``k_hat = k``, and we take lambda relative to each kernel's peak (a wide sigma = 2.6 kernel
peaks at 0.024, below an absolute 0.1 everywhere). ``relative=False`` uses absolute thresholds.

**Uses.** (1) The two-step blind pipeline KENet + AMNet: the estimated kernel is encoded by the
renderer's codec (``blindsr-gym evaluate --methods kenet``). (2) A policy in the environments:
:class:`KENetPolicy` projects the kernel to an action (``codec.code_to_action(codec.encode(k))``,
clipped to [-1, 1]). (3) Its loss pre-trains the actor on decoded kernels
(``blindsr-gym pretrain-actor --loss att``).

Train with ``blindsr-gym train-kenet --data ../shared/data/train --out runs/kenet_x4``; the quality
figure is the kernel PSNR of that paper's Table 3 (:func:`kernel_psnr`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.errors import InputError
from blindsr_gym.kernels import kernel_psnr

__all__ = ["KENet", "KENetPolicy", "adaptive_attention_loss", "attention_masks", "kernel_psnr", "load_kenet",
           "save_kenet", "SHIPPED_KENETS", "KENetCheckpointError"]

FORMAT = "blindsr-gym-kenet/1"
SHIPPED_KENETS = ("kenet_x4",)


class KENetCheckpointError(InputError):
    """A KENet checkpoint that is missing, malformed, or of another kind."""


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class KENet(nn.Module):
    """LR image ``[N, 3, H, W]`` in [0, 1] -> kernel ``[N, l, l]`` (non-negative, sums to 1)."""

    def __init__(self, kernel_size: int = 21, channels: int = 64, stages: int = 3, fc: int = 1024):
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        self.config = dict(kernel_size=kernel_size, channels=channels, stages=stages, fc=fc)
        self.kernel_size = kernel_size
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True), ResBlock(channels)]
        c = channels
        for s in range(1, stages + 1):
            layers += [nn.MaxPool2d(2), nn.Conv2d(c, channels * s, 3, padding=1), nn.ReLU(inplace=True),
                       ResBlock(channels * s)]
            c = channels * s
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, fc), nn.ReLU(inplace=True), nn.Linear(fc, fc), nn.ReLU(inplace=True),
                                  nn.Linear(fc, kernel_size * kernel_size))
        self.min_input = 2 ** stages

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W] in [0, 1], got {tuple(lr.shape)}")
        if min(lr.shape[-2:]) < self.min_input:
            raise InputError(f"lr must be at least {self.min_input}x{self.min_input}, got {tuple(lr.shape[-2:])}")
        x = self.features(lr - 0.5).mean(dim=(2, 3))
        logits = self.head(x)
        return torch.softmax(logits.float(), dim=1).reshape(-1, self.kernel_size, self.kernel_size)


def attention_masks(k: torch.Tensor, lambdas=(0.01, 0.1), relative: bool = True) -> list[torch.Tensor]:
    """``[k >= lambda * max(k)]`` (or ``[k >= lambda]``) for each lambda, as float masks shaped like ``k``."""
    if k.dim() != 3:
        raise InputError(f"kernels must be [N, l, l], got {tuple(k.shape)}")
    peak = k.amax(dim=(1, 2), keepdim=True) if relative else torch.ones_like(k[:, :1, :1])
    return [(k >= lam * peak).to(k.dtype) for lam in lambdas]


def adaptive_attention_loss(k_hat: torch.Tensor, k: torch.Tensor, lambdas=(0.01, 0.1), rhos=(0.01, 0.1, 1.0),
                            relative: bool = True) -> torch.Tensor:
    """KENet's L_att, averaged over the batch; ``k_hat`` the estimates, ``k`` the true kernels, ``[N, l, l]``."""
    if k_hat.shape != k.shape:
        raise InputError(f"estimate {tuple(k_hat.shape)} and true kernels {tuple(k.shape)} differ in shape")
    if len(rhos) != len(lambdas) + 1:
        raise InputError(f"need one rho per lambda plus rho0: {len(lambdas)} lambdas, {len(rhos)} rhos")
    diff = (k_hat - k).abs()
    loss = rhos[0] * diff.sum(dim=(1, 2))
    for rho, m in zip(rhos[1:], attention_masks(k, lambdas, relative), strict=True):
        loss = loss + rho * (diff * m).sum(dim=(1, 2))
    return loss.mean()


class KENetPolicy:
    """KENet as a policy: uint8 observations (or float NCHW) -> actions, via the renderer's codec."""

    def __init__(self, kenet: KENet, codec, device: torch.device | str = "cpu"):
        if kenet.kernel_size != codec.size:
            raise InputError(f"KENet estimates {kenet.kernel_size}x{kenet.kernel_size} kernels, the codec encodes "
                             f"{codec.size}x{codec.size}")
        self.kenet, self.codec, self.device = kenet.to(device).eval(), codec, torch.device(device)

    @torch.no_grad()
    def kernels(self, lr: torch.Tensor) -> torch.Tensor:
        return self.kenet(lr.to(self.device))

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        from .networks import obs_to_tensor

        x = obs if isinstance(obs, torch.Tensor) else obs_to_tensor(obs, self.device)
        a = self.codec.code_to_action(self.codec.encode(self.kernels(x))).clamp(-1, 1)
        out = a.cpu().numpy().astype(np.float32)
        return out if (isinstance(obs, torch.Tensor) or np.asarray(obs).ndim == 4) else out[0]


def save_kenet(model: KENet, path: str | Path, card: dict | None = None) -> Path:
    from . import save_module

    return save_module(model, path, FORMAT, codec=None, card=card)


def resolve_kenet(name_or_path) -> Path:
    """The ``.safetensors`` path of a shipped KENet name or a checkpoint path (clear error if missing)."""
    from blindsr_gym.utils import resolve_checkpoint

    return resolve_checkpoint(name_or_path, "blindsr_gym.agents", SHIPPED_KENETS, KENetCheckpointError, "KENet")


def load_kenet(name_or_path, device: str | torch.device | None = None) -> KENet:
    """A frozen KENet in eval mode, from a shipped name (``kenet_x4``) or a ``.safetensors`` path."""
    from blindsr_gym.utils import read_checkpoint, resolve_device

    path = resolve_kenet(name_or_path)
    meta, tensors = read_checkpoint(path, FORMAT, KENetCheckpointError, "KENet")
    model = KENet(**json.loads(meta["config"]))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise KENetCheckpointError(f"{path}: weights do not fit the KENet configuration: {e}") from None
    model.requires_grad_(False).eval()
    return model.to(resolve_device(device if device is not None else "cpu"))
