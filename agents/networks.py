"""The actor (kernel predictor) and the critic of AMNet-RL.

**Actor**, after the paper's Fig. 3(c): a 3x3 head conv (3 -> 64), five residual channel-attention
blocks (two 3x3 convs at 64 channels and an RCAN-style channel attention, reduction 16), global
average pooling, and a two-layer head (64 -> 64 -> 15) with tanh, so actions lie in [-1, 1]^15.
The layout is inferred from the paper's figures: 379,107 parameters against the 383K that AMNet-RL
(1,982K) minus AMNet (1,599K) leaves, and 1.52 G MACs at a 64x64 input, which with AMNet's 5.10 G
gives the paper's 6.6 G for AMNet-RL. Every conv runs at the input resolution, as the MAC count
requires (a strided actor would cost far less).

**Critic** Q(s, a): four stride-2 3x3 convs over the LR image (32-64-64-128 channels), global
average pooling, concatenation with the action, and an MLP (143 -> 256 -> 256 -> 1).

Both take float NCHW LR images in [0, 1]; :func:`obs_to_tensor` converts the environments' uint8 HWC
observations.

**Sigma head** (``Actor(head="sigma", codec=...)``, an option of this package, not the paper's): the
last layer predicts one number, the width sigma of an isotropic Gaussian in ``[sigma_min, sigma_max]``,
and the action is read off the isotropic family's curve in action space (a table of
``codec.code_to_action(codec.encode(isotropic_gaussian(sigma)))`` on a uniform sigma grid, linearly
interpolated, so the action stays differentiable in sigma). Its actions are still 15-D and in
[-1, 1], but always on the family's manifold: the trailing components, which AMNet reads but which
swing across their box as sigma moves (docs/experiments/2026-11-22_kernel_precision.md), come right
whenever sigma does. The table is a buffer, saved with the weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.errors import InputError
from blindsr_gym.layers import ChannelAttention
from blindsr_gym.utils import to_device


def obs_to_tensor(obs, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 observations ``[N, H, W, 3]`` (or one ``[H, W, 3]``) to float NCHW in [0, 1]."""
    x = to_device(torch.as_tensor(np.asarray(obs)), device)  # to a GPU without waiting for it
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[-1] != 3:
        raise InputError(f"observations must be [N, H, W, 3], got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(255)


class RCAB(nn.Module):
    """Residual block: ``x + CA(conv(relu(conv(x))))``."""

    def __init__(self, channels: int = 64, reduction: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.ca = ChannelAttention(channels, reduction)

    def forward(self, x):
        return x + self.ca(self.conv2(F.relu(self.conv1(x))))


HEADS = ("fc", "sigma")
SIGMA_GRID = 381  # sigma-head table points (a step of 0.01 over the default [0.2, 4.0])


def isotropic_action_table(codec, sigmas) -> torch.Tensor:
    """``[len(sigmas), codec.length]``: the actions of isotropic Gaussians of width ``sigmas``."""
    from blindsr_gym.kernels import isotropic_gaussian

    return codec.code_to_action(codec.encode(isotropic_gaussian(np.asarray(sigmas, dtype=np.float64), codec.size)))


class Actor(nn.Module):
    """The kernel predictor P(LR) -> action in [-1, 1]^code_len.

    ``head="fc"`` (the paper's): GAP, then 64 -> 64 -> code_len with tanh. ``head="sigma"``: GAP, then
    64 -> 64 -> 1, a sigma in ``[sigma_min, sigma_max]`` (sigmoid), and the isotropic family's action for
    it (module docstring); building one needs the ``codec`` (a loaded checkpoint brings its table).
    """

    def __init__(self, code_len: int = 15, channels: int = 64, num_blocks: int = 5, reduction: int = 16,
                 head: str = "fc", sigma_min: float = 0.2, sigma_max: float = 4.0, codec=None):
        super().__init__()
        if head not in HEADS:
            raise InputError(f"head must be one of {HEADS}, got {head!r}")
        self.config = dict(code_len=code_len, channels=channels, num_blocks=num_blocks, reduction=reduction)
        self.code_len, self.head_kind = code_len, head
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(RCAB(channels, reduction) for _ in range(num_blocks)))
        out = code_len if head == "fc" else 1
        self.fc = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, out))
        if head == "sigma":
            if not 0 < sigma_min < sigma_max:
                raise InputError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
            self.config.update(head=head, sigma_min=sigma_min, sigma_max=sigma_max)
            table = torch.full((SIGMA_GRID, code_len), float("nan"))
            if codec is not None:
                if codec.length != code_len:
                    raise InputError(f"codec has {codec.length} components, the actor {code_len}")
                table = isotropic_action_table(codec, np.linspace(sigma_min, sigma_max, SIGMA_GRID)).float()
            self.register_buffer("action_table", table)

    def pooled(self, lr: torch.Tensor) -> torch.Tensor:
        """``[N, channels]``: the trunk's globally pooled features, before the head."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W] in [0, 1], got {tuple(lr.shape)}")
        return self.blocks(F.relu(self.head(lr))).mean(dim=(2, 3))

    def _features(self, lr: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(lr))

    def _sigma_from(self, z: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config["sigma_min"], self.config["sigma_max"]
        return lo + (hi - lo) * torch.sigmoid(z[:, 0].float())

    def sigma(self, lr: torch.Tensor) -> torch.Tensor:
        """``[N]`` kernel widths (sigma head only)."""
        if self.head_kind != "sigma":
            raise InputError("sigma() needs an actor built with head='sigma'")
        return self._sigma_from(self._features(lr))

    def action_from_pooled(self, f: torch.Tensor) -> torch.Tensor:
        """The actions for pooled features ``f`` (:meth:`pooled`): ``forward(lr) == action_from_pooled(pooled(lr))``."""
        z = self.fc(f)
        return self.sigma_to_action(self._sigma_from(z)) if self.head_kind == "sigma" else torch.tanh(z)

    def sigma_to_action(self, sigma: torch.Tensor) -> torch.Tensor:
        """``[N, code_len]``: the table's actions at ``sigma`` (linear interpolation; sigma head only)."""
        table = self.action_table
        if torch.isnan(table[0, 0]):
            raise RuntimeError("this sigma-head actor has no action table: build it with codec=... "
                               "or load a checkpoint")
        lo, hi = self.config["sigma_min"], self.config["sigma_max"]
        pos = ((sigma.float() - lo) / (hi - lo)).clamp(0, 1) * (len(table) - 1)
        i0 = pos.detach().floor().long().clamp(max=len(table) - 2)
        w = (pos - i0.float())[:, None]
        return table[i0] * (1 - w) + table[i0 + 1] * w

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.action_from_pooled(self.pooled(lr))


class Critic(nn.Module):
    """Q(s, a) for one-step episodes: the expected reward of action ``a`` on LR image ``s``."""

    def __init__(self, code_len: int = 15, widths: tuple[int, ...] = (32, 64, 64, 128), hidden: int = 256):
        super().__init__()
        self.config = dict(code_len=code_len, widths=list(widths), hidden=hidden)
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.q = nn.Sequential(nn.Linear(c + code_len, hidden), nn.ReLU(inplace=True),
                               nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """The pooled image features; pass them as ``enc=`` to reuse them across calls on the same images."""
        return self.features(lr).mean(dim=(2, 3))

    def forward(self, lr: torch.Tensor, action: torch.Tensor, enc=None) -> torch.Tensor:
        f = self.encode(lr) if enc is None else enc
        return self.q(torch.cat([f, action], dim=1)).squeeze(1)


class ActorFeatureCritic(nn.Module):
    """Q(s, a) on a frozen copy of a (pre-trained) actor: an MLP over ``[f(s), a0(s), a, a - a0(s)]``,
    where ``f`` are that actor's pooled trunk features and ``a0`` its action (an option of this package,
    not the paper's).

    A critic learnt from scratch must first learn to read the kernel from the LR image, which is the
    actor's whole task: after 1,024 episodes the CNN :class:`Critic` had not learnt a PSNR reward of
    magnitude 0.3 (docs/experiments/2026-11-23_ddpg_cpu_degrades_actor.md). A pre-trained actor already
    reads the kernel, so this critic only has to learn how the reward varies with the action around that
    actor's estimate ``a0(s)``. The
    encoder is frozen (no gradients, saved with the critic); it is not the actor being trained, which
    moves away from it.
    """

    def __init__(self, actor: Actor, hidden: int = 256):
        super().__init__()
        import copy

        self.encoder = copy.deepcopy(actor).requires_grad_(False).eval()
        c, n = actor.config["channels"], actor.code_len
        self.config = dict(encoder="actor", encoder_config=dict(actor.config), hidden=hidden)
        self.q = nn.Sequential(nn.Linear(c + 3 * n, hidden), nn.ReLU(inplace=True),
                               nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def encode(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f, a0)`` of ``lr``; pass it as ``enc=`` to reuse it across calls on the same images."""
        return self.from_pooled(self.encoder.pooled(lr))

    @torch.no_grad()
    def from_pooled(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f, a0)`` from the encoder's pooled features ``f`` (kept, e.g., in a replay buffer)."""
        return f, self.encoder.action_from_pooled(f)

    def forward(self, lr: torch.Tensor, action: torch.Tensor, enc=None) -> torch.Tensor:
        f, a0 = self.encode(lr) if enc is None else enc
        return self.q(torch.cat([f, a0, action, action - a0], dim=1)).squeeze(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class SelfEnsemble(nn.Module):
    """Test-time self-ensemble of a sigma-head actor: the width is the mean of its estimates on the 8 flips
    and 90-degree rotations of the LR image (an isotropic kernel is invariant to them, the convolutions are
    not), then the action of that width. 8x the actor's cost; the renderer still runs once.

    Not uniformly better than the actor alone (docs/experiments/2026-11-23_self_ensemble.md).
    ``evaluate --methods amnet-rl-ens``."""

    def __init__(self, actor: Actor):
        super().__init__()
        if getattr(actor, "head_kind", None) != "sigma":
            raise InputError("a self-ensemble needs a sigma-head actor (it averages the width estimates)")
        self.actor = actor
        self.head_kind, self.code_len = "sigma", actor.code_len

    def sigma(self, lr: torch.Tensor) -> torch.Tensor:
        """``[N]``: the mean width over the 8 views; views of one shape share a batch."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise InputError(f"lr must be float [N, 3, H, W] in [0, 1], got {tuple(lr.shape)}")
        n, views = len(lr), (lr, lr.flip(-1))
        even = torch.cat([torch.rot90(v, r, (-2, -1)) for v in views for r in (0, 2)])
        odd = torch.cat([torch.rot90(v, r, (-2, -1)) for v in views for r in (1, 3)])
        sig = torch.cat([self.actor.sigma(even).reshape(4, n), self.actor.sigma(odd).reshape(4, n)])
        return sig.mean(0)

    def sigma_to_action(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.actor.sigma_to_action(sigma)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.actor.sigma_to_action(self.sigma(lr))
