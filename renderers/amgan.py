"""AMGAN: AMNet fine-tuned with L1 + perceptual + adversarial losses (Hui et al., 2021, Sec. 4).

The adversarial loss is RealnessGAN's (Xiangli et al., ICLR 2020): the discriminator outputs a
distribution over ``num_outcomes`` "realness" outcomes instead of one score, and is trained to
match a *real* anchor distribution ``A1`` on HR patches and a *fake* anchor ``A0`` on SR patches:

    L_D = KL(A1 || D(x)) + KL(A0 || D(G(z)))
    L_G = KL(D(x) || D(G(z))) - KL(A0 || D(G(z)))       (the generator objective of their experiments)

Anchors, as the official construction (histograms of N(0, 0.1) samples and of U(-1, 1) samples)
but computed exactly instead of from random samples: ``A0`` is N(0, 0.1^2) integrated over
``num_outcomes`` equal bins on [-0.3, 0.3] (about the range of 1,000 such samples), renormalised;
``A1`` is uniform.

The perceptual term is the L1 distance of VGG19 ``conv5_4`` features (before ReLU, as ESRGAN). The
ImageNet weights cannot be downloaded here: pass a local torchvision ``vgg19`` state-dict file
(``--vgg-weights``), otherwise the term is off and the model card says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from blindsr_gym.errors import InputError


def realness_anchors(num_outcomes: int = 51) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A0 fake, A1 real)``, each ``[num_outcomes]`` summing to 1."""
    if not isinstance(num_outcomes, int) or num_outcomes < 2:
        raise InputError(f"num_outcomes must be an integer >= 2, got {num_outcomes!r}")
    edges = torch.linspace(-0.3, 0.3, num_outcomes + 1, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf(edges / (0.1 * math.sqrt(2))))
    a0 = (cdf[1:] - cdf[:-1]).clamp_min(1e-12)
    a0 = a0 / a0.sum()
    a1 = torch.full((num_outcomes,), 1.0 / num_outcomes, dtype=torch.float64)
    return a0.float(), a1.float()


def _kl(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(p || q), ``p`` [N, K] or [K] probabilities, ``log_q`` [N, K]."""
    p = p.expand_as(log_q)
    return (p * (p.clamp_min(1e-12).log() - log_q)).sum(-1).mean()


class RealnessLoss(nn.Module):
    """RealnessGAN losses from discriminator logits ``[N, num_outcomes]``."""

    def __init__(self, num_outcomes: int = 51):
        super().__init__()
        a0, a1 = realness_anchors(num_outcomes)
        self.register_buffer("a0", a0)
        self.register_buffer("a1", a1)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return _kl(self.a1, F.log_softmax(real_logits, -1)) + _kl(self.a0, F.log_softmax(fake_logits, -1))

    def generator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        log_fake = F.log_softmax(fake_logits, -1)
        p_real = F.softmax(real_logits.detach(), -1)
        return _kl(p_real, log_fake) - _kl(self.a0, log_fake)


class Discriminator(nn.Module):
    """A VGG-style patch discriminator (SRGAN/ESRGAN layout: conv-BN-LeakyReLU, stride 2 every
    second conv, 64 -> 512 channels), global-average-pooled so any HR patch size >= 32 works,
    then two linear layers to ``num_outcomes`` logits."""

    def __init__(self, num_outcomes: int = 51, channels: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        c = channels
        plan = [(c, 2), (2 * c, 1), (2 * c, 2), (4 * c, 1), (4 * c, 2), (8 * c, 1), (8 * c, 2), (8 * c, 1), (8 * c, 2)]
        for out, stride in plan:
            layers += [nn.Conv2d(c, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c, 100), nn.LeakyReLU(0.2, True), nn.Linear(100, num_outcomes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


# VGG19 "features" up to conv5_4 (torchvision indices 0..34): numbers are output channels, "M" max-pool
_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]


class VGGFeatures(nn.Module):
    """VGG19 ``features`` up to ``conv5_4`` before its ReLU, with ImageNet input normalisation.

    Parameter names match torchvision's ``vgg19().features`` (``"0.weight"``, ... or with a
    ``"features."`` prefix), so a torchvision state-dict file loads directly.
    """

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers[:-1])  # drop the last ReLU: conv5_4 before activation
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        if weights is not None:
            self.load_weights(weights)
        self.requires_grad_(False).eval()

    def load_weights(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG19 weights not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = {k[len("features."):] if k.startswith("features.") else k: v for k, v in sd.items()}
        own = self.features.state_dict()
        missing = [k for k in own if k not in sd]
        if missing:
            raise InputError(f"{path}: not a torchvision vgg19 state dict (missing {missing[:3]} ...)")
        self.features.load_state_dict({k: sd[k] for k in own})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """L1 between VGG19 conv5_4 features of SR and HR."""

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        self.vgg = VGGFeatures(weights)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.vgg(sr), self.vgg(hr).detach())
