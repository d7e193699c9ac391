"""Masked autoregressive flow layer: ``maf`` (MAF, Papamakarios et al. 2017, eqs. 2-5).

References: Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density Estimation",
NeurIPS 2017, arXiv:1705.07057; Germain, Gregor, Murray & Larochelle, "MADE: Masked Autoencoder for
Distribution Estimation", ICML 2015, arXiv:1502.03509.

MAF's normalising direction, for an ordering of the ``D`` features::

    u_i = (x_i - μ_i(x_<i)) ⊙ exp(-α_i(x_<i)),      log|det ∂u/∂x| = -Σ_i α_i,

with ``μ`` and ``α`` from one MADE network (Germain et al. 2015): masked linear layers whose
masks let output ``i`` see only inputs earlier in the ordering; the context (optional) enters the
first hidden layer unmasked. ``α`` is bounded as a coupling's log-scale (``scale`` and
``clamp``), the last layer starts at zero (identity). Forward is one pass; the inverse
``x_i = u_i exp(α_i) + μ_i`` takes ``D`` passes. Vectors ``(D,)`` only. Example::

    >>> import torch
    >>> layer = MAF(hidden=[16], shape=(3,))
    >>> x = torch.randn(5, 3)
    >>> z, logdet = layer(x)
    >>> torch.allclose(layer.inverse(z)[0], x, atol=1e-6)
    True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, ShapeError, register, sum_except_batch
from eddies.core.init import zero_init_
from eddies.flows._util import ScaleName, log_scale


class MaskedLinear(nn.Linear):
    """``y = (W ⊙ M) x + b`` with a fixed binary mask ``M`` (MADE)."""

    def __init__(self, mask: Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))  # saved: a loaded ordering is exact

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """MADE over ``D`` inputs in ``order`` (a permutation of 1..D): outputs ``(μ, α_raw)``."""

    def __init__(self, order: Tensor, hidden: list[int], context_features: int | None, activation: str):
        super().__init__()
        d = len(order)
        degrees = [order]
        for width in hidden:
            degrees.append(torch.arange(width) % max(1, d - 1) + 1)
        self.layers = nn.ModuleList(
            MaskedLinear((out[:, None] >= inp[None, :]).float()) for inp, out in zip(degrees[:-1], degrees[1:], strict=True)
        )
        last_in = degrees[-1]
        self.last = MaskedLinear((order.repeat(2)[:, None] > last_in[None, :]).float())
        zero_init_(self.last)
        first = hidden[0] if hidden else 2 * d
        self.context = None if context_features is None else nn.Linear(context_features, first)
        self.activation = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}[activation]()

    def forward(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i == 0 and self.context is not None:
                h = h + self.context(context)
            h = self.activation(h)
        out = self.last(h)
        if not self.layers and self.context is not None:
            out = out + self.context(context)
        return out.chunk(2, dim=1)


class MAFConfig(ComponentConfig):
    """Config of ``maf``."""

    hidden: list[int] = Field([64, 64], description="MADE hidden widths")
    order: Literal["natural", "reversed", "random"] = Field("natural", description="autoregressive ordering")
    seed: int | None = Field(None, description="seed of a random ordering")
    activation: Literal["relu", "tanh", "leaky_relu"] = "relu"
    scale: ScaleName = "exp_clamp"
    clamp: float = Field(3.0, gt=0)


@register(
    "flows", "maf", version=1, config=MAFConfig,
    summary="Masked autoregressive affine layer over vectors (MAF, MADE masks), optional context.",
    examples=[{"config": {"hidden": [8, 8]}, "shape": (4,), "context_shape": None},
              {"config": {"hidden": [6], "order": "random", "seed": 1, "activation": "tanh"}, "shape": (3,),
               "context_shape": (2,)},
              {"config": {"hidden": [5], "order": "reversed", "scale": "exp"}, "shape": (2,), "context_shape": None}],
)
class MAF(Bijection):
    """``u = (x - μ(x_<i)) ⊙ exp(-α(x_<i))`` (see the module docstring)."""

    def __init__(self, hidden: list[int] = (64, 64), order: str = "natural", seed: int | None = None,
                 activation: str = "relu", scale: str = "exp_clamp", clamp: float = 3.0, *,
                 shape: tuple[int, ...], context_shape=None):
        super().__init__(shape, context_shape)
        if len(self.shape) != 1:
            raise ShapeError(f"MAF: works on vectors (D,), got {self.shape}")
        if self.context_shape is not None and len(self.context_shape) != 1:
            raise ShapeError(f"MAF: the context must be a vector (F,), got {self.context_shape}")
        d = self.shape[0]
        if order == "random":
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            ranks = torch.randperm(d, generator=generator) + 1
        else:
            ranks = torch.arange(1, d + 1) if order == "natural" else torch.arange(d, 0, -1)
        self.register_buffer("ranks", ranks)
        self.scale, self.clamp = scale, clamp
        context = None if self.context_shape is None else self.context_shape[0]
        self.made = MADE(ranks, list(hidden), context, activation)

    def _mu_alpha(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        mu, raw = self.made(x, context)
        return mu, log_scale(raw, self.scale, self.clamp)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        mu, alpha = self._mu_alpha(x, context)
        return (x - mu) * torch.exp(-alpha), -sum_except_batch(alpha)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        x = torch.zeros_like(z)
        for _ in range(self.shape[0]):
            mu, alpha = self._mu_alpha(x, context)
            x = z * torch.exp(alpha) + mu
        return x, sum_except_batch(alpha)
