"""Dequantised pixels in logit space, as in RealNVP and MAF (frmdn.txt section 5.1).

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017, arXiv:1705.07057; Razavi, Hosseini & Behzad, "FRMDN: Flow-based
Recurrent Mixture Density Network", 2020, arXiv:2008.02144 (frmdn.txt).

8-bit values ``k`` are dequantised to ``u = (k + noise) / 256`` with ``noise ~ U[0, 1)`` and
mapped to ``y = logit(λ + (1 - 2λ) u)`` (λ = 1e-6 for MNIST). Densities of ``y`` ("logit
space", the MAF paper's convention for its MNIST tables) convert to densities of ``u`` ("pixel
space") by the change of variables

    log p(u) = log p(y) + Σ_i log |dy_i/du_i|,   log |dy/du| = log(1 - 2λ) - log s - log(1 - s),

with ``s = λ + (1 - 2λ) u = sigmoid(y)``, and to bits per dimension of the 8-bit data by adding
the bin width: ``bits/dim = (D log 256 - log p(u)) / (D log 2)`` for ``D`` values per image.

    >>> import torch
    >>> k = torch.tensor([[0, 128, 255]], dtype=torch.uint8)
    >>> y = to_logit(dequantize(k, torch.full((1, 3), 0.5)), 1e-6)
    >>> torch.allclose(from_logit(y, 1e-6) * 256, torch.tensor([[0.5, 128.5, 255.5]]).double())
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import softplus

from eddies.core import sum_except_batch

LEVELS = 256  # 8-bit data


def dequantize(pixels: Tensor, noise: Tensor) -> Tensor:
    """``(k + noise) / 256`` in float64, for 8-bit ``pixels`` and ``noise`` in [0, 1)."""
    return (pixels.double() + noise.double()) / LEVELS


def to_logit(u: Tensor, alpha: float) -> Tensor:
    """``logit(λ + (1 - 2λ) u)`` for ``u`` in [0, 1] (λ = ``alpha`` keeps it finite)."""
    s = alpha + (1 - 2 * alpha) * u
    return torch.log(s) - torch.log1p(-s)


def from_logit(y: Tensor, alpha: float) -> Tensor:
    """Inverse of :func:`to_logit`, clamped to [0, 1] (samples may land outside λ's margin)."""
    return ((torch.sigmoid(y) - alpha) / (1 - 2 * alpha)).clamp(0.0, 1.0)


def logit_log_det(y: Tensor, alpha: float) -> Tensor:
    """``Σ_i log |dy_i/du_i|`` per sample (shape (batch,)), written in terms of ``y`` for stability."""
    return sum_except_batch(math.log(1 - 2 * alpha) + softplus(y) + softplus(-y))


def bits_per_dim(log_prob_logit: Tensor, y: Tensor, alpha: float) -> Tensor:
    """Bits per dimension of the 8-bit data, per sample, from log-densities in logit space."""
    dims = y[0].numel()
    log_prob_pixel = log_prob_logit + logit_log_det(y, alpha)
    return (dims * math.log(LEVELS) - log_prob_pixel) / (dims * math.log(2))
