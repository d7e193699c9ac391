"""Elementwise maps: ``elementwise_affine`` and ``logit`` (RealNVP/MAF pre-processing).

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017, arXiv:1705.07057.

``elementwise_affine``: ``z = x ⊙ exp(log_scale) + bias`` with one scale and bias per entry of the
event shape (starting at the identity); ``log|det| = Σ log_scale``.

``logit`` (RealNVP section 4.1; MAF section 4.2): data ``x ∈ [0, 1]`` is mapped to
``y = α + (1 - 2α) x`` and then ``z = logit(y) = log y - log(1 - y)``, so

    log|det ∂z/∂x| = Σ [ log(1 - 2α) - log y - log(1 - y) ]   (exact, per entry).

An input outside ``[0, 1]`` raises :class:`InputOutsideDomain` naming the offending range.
Example::

    >>> import torch
    >>> z, logdet = Logit(alpha=0.05, shape=(2,))(torch.tensor([[0.5, 0.5]]))
    >>> z.tolist()
    [[0.0, 0.0]]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, InputOutsideDomain, register, sum_except_batch


@register(
    "flows", "elementwise_affine", version=1, config=ComponentConfig,
    summary="Learned scale and bias per entry: z = x * exp(log_scale) + bias.",
    examples=[{"config": {}, "shape": (3,), "context_shape": None},
              {"config": {}, "shape": (2, 2, 1), "context_shape": None}],
)
class ElementwiseAffine(Bijection):
    """``z = x ⊙ exp(log_scale) + bias`` per entry (see the module docstring)."""

    def __init__(self, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape)
        self.log_scale = nn.Parameter(torch.zeros(self.shape))
        self.bias = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x * torch.exp(self.log_scale) + self.bias, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return (z - self.bias) * torch.exp(-self.log_scale), -self.log_scale.sum().expand(z.shape[0])


class LogitConfig(ComponentConfig):
    """Config of ``logit``."""

    alpha: float = Field(0.05, ge=0.0, lt=0.5, description="λ of y = λ + (1 - 2λ) x (RealNVP: 0.05, MAF: 1e-6)")


@register(
    "flows", "logit", version=1, config=LogitConfig,
    summary="Logit pre-processing z = logit(α + (1 - 2α) x) of data in [0, 1], exact log-det.",
    examples=[{"config": {}, "shape": (3,), "context_shape": None, "inputs": {"low": 0.0, "high": 1.0}},
              {"config": {"alpha": 1e-6}, "shape": (1, 2, 2), "context_shape": None,
               "inputs": {"low": 0.01, "high": 0.99}}],
)
class Logit(Bijection):
    """``z = logit(α + (1 - 2α) x)`` (see the module docstring)."""

    def __init__(self, alpha: float = 0.05, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape)
        self.alpha = alpha

    def _logdet(self, log_y: Tensor, log_1m_y: Tensor) -> Tensor:
        return sum_except_batch(math.log1p(-2 * self.alpha) - log_y - log_1m_y)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        if bool((x < 0).any()) or bool((x > 1).any()):
            raise InputOutsideDomain(
                f"Logit: inputs must lie in [0, 1], got values in [{float(x.min()):.4g}, {float(x.max()):.4g}]"
            )
        y = self.alpha + (1 - 2 * self.alpha) * x
        log_y, log_1m_y = torch.log(y), torch.log1p(-y)
        return log_y - log_1m_y, self._logdet(log_y, log_1m_y)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        x = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        return x, -self._logdet(F.logsigmoid(z), F.logsigmoid(-z))
