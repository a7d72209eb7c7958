"""Small network layers shared by the actor (agents/networks.py) and DAN (renderers/dan.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """RCAN-style channel attention: ``x * sigmoid(up(act(down(mean_hw(x)))))``.

    ``negative_slope``: 0 for ReLU (the actor), 0.2 for LeakyReLU (DAN).
    """

    def __init__(self, channels: int, reduction: int = 16, negative_slope: float = 0.0):
        super().__init__()
        self.down = nn.Conv2d(channels, channels // reduction, 1)
        self.up = nn.Conv2d(channels // reduction, channels, 1)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.leaky_relu(self.down(x.mean(dim=(2, 3), keepdim=True)), self.negative_slope)
        return x * torch.sigmoid(self.up(w))
