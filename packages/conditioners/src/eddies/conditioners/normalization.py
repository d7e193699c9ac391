"""Feature normalisation inside conditioning networks (not invertible layers; no log-det).

``actnorm`` is Glow's activation normalisation (Kingma & Dhariwal 2018, arXiv:1807.03039,
section 3.1) used as a
normaliser after each hidden convolution of Glow's coupling network: a per-channel affine map
``y = (x + b) * exp(logs)`` whose parameters are initialised from the first training batch so
that every channel has zero mean and unit variance. The "initialised" flag is a buffer, so a
loaded model does not re-initialise. ``batch`` is :class:`torch.nn.BatchNorm2d`::

    >>> import torch
    >>> norm = make_norm("actnorm", 3)
    >>> y = norm(torch.randn(8, 3, 4, 4) * 5 + 2)
    >>> bool(y.mean(dim=(0, 2, 3)).abs().max() < 1e-5)
    True
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

NormName = Literal["none", "actnorm", "batch"]


class ActNormFeatures(nn.Module):
    """Per-channel ``(x + b) * exp(logs)`` with data-dependent initialisation (Glow, sec. 3.1)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, correction=0)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not bool(self.initialized):
            self._initialize(x)
        return (x + self.bias) * torch.exp(self.logs)


def make_norm(name: str, channels: int) -> nn.Module:
    """The normaliser ``name`` (``none``, ``actnorm``, ``batch``) for ``channels`` channels."""
    if name == "none":
        return nn.Identity()
    if name == "actnorm":
        return ActNormFeatures(channels)
    if name == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {name!r}; known: none, actnorm, batch")
