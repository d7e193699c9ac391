"""The sinh-arcsinh bijection (Jones & Pewsey, Biometrika 2009), as an eddies plug-in.

Elementwise, with a learned skew ε and tail weight δ = exp(log δ) per feature:

    z = sinh(δ · asinh(x) - ε)
    log|dz/dx| = log δ + log cosh(δ · asinh(x) - ε) - ½ log(1 + x²)

Its inverse is x = sinh((asinh(z) + ε) / δ). With ε = 0 and δ = 1 it is the identity; δ > 1
makes tails lighter, δ < 1 heavier, and ε skews.

Example::

    >>> import torch
    >>> from eddies.core import build
    >>> layer = build({"type": "sinh_arcsinh", "init_skew": 0.3}, "flows", shape=(4,))
    >>> z, logdet = layer(torch.randn(8, 4))
    >>> x, back = layer.inverse(z)
    >>> bool(torch.allclose(logdet, -back, atol=1e-5))
    True
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, register, sum_except_batch


class SinhArcsinhConfig(ComponentConfig):
    init_skew: float = Field(0.0, description="initial skew ε")
    init_log_tailweight: float = Field(0.0, description="initial log δ (0: identity)")


@register(
    "flows", "sinh_arcsinh", version=1, config=SinhArcsinhConfig,
    summary="Elementwise sinh-arcsinh transform with learned skew and tail weight.",
    examples=[
        {"config": {"init_skew": 0.4, "init_log_tailweight": -0.3}, "shape": (3,)},
        {"config": {"init_skew": -0.2, "init_log_tailweight": 0.5}, "shape": (2, 2, 2)},
    ],
)
class SinhArcsinh(Bijection):
    """z = sinh(δ·asinh(x) − ε) per feature (see the module docstring for the log-det)."""

    def __init__(self, init_skew: float, init_log_tailweight: float, shape: tuple[int, ...],
                 context_shape: tuple[int, ...] | None = None):
        # unconditional: inside a conditional composite it is built with the composite's
        # context_shape; it states None (so no context is routed to it) and refuses one at run time
        super().__init__(shape)
        self.skew = nn.Parameter(torch.full(self.shape, float(init_skew)))
        self.log_tailweight = nn.Parameter(torch.full(self.shape, float(init_log_tailweight)))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        inner = self.log_tailweight.exp() * torch.asinh(x) - self.skew
        return torch.sinh(inner), self._logdet(x, inner)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape, "latent")
        self.check_context(context, z.shape[0])
        inner = torch.asinh(z)  # = δ·asinh(x) − ε
        x = torch.sinh((inner + self.skew) / self.log_tailweight.exp())
        return x, -self._logdet(x, inner)

    def _logdet(self, x: Tensor, inner: Tensor) -> Tensor:
        """log|dz/dx| = Σ log δ + log cosh(inner) − ½ log(1 + x²), with inner = δ·asinh(x) − ε."""
        return sum_except_batch(self.log_tailweight + _log_cosh(inner) - 0.5 * torch.log1p(x * x))


def _log_cosh(t: Tensor) -> Tensor:
    """log cosh t, stable for large |t|: |t| + log1p(exp(-2|t|)) - log 2."""
    a = t.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)
