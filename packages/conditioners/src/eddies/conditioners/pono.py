"""Positional normalisation (``pono``), used by MotionFlow's eq. 5.

Boyi Li, Felix Wu, Ser-Nam Lim, Serge Belongie & Kilian Q. Weinberger, "Positional
Normalization", NeurIPS 2019, arXiv:1907.04312; MotionFlow: Zand, Etemad & Greenspan, IEEE
TPAMI 2023, arXiv:2104.04391 (local copy motionflow.txt).

At every position, normalise across channels, without parameters (motionflow.txt eq. 5, second
line, read as ``(c1 - mean(c1)) / std(c1)`` with statistics over the channel axis)::

    PONO(x)[c, h, w] = (x[c, h, w] - mu[h, w]) / sqrt(sigma2[h, w] + eps),
    mu = mean_c x,  sigma2 = mean_c (x - mu)^2

Example::

    >>> import torch
    >>> y = PONO(in_shape=(4, 2, 3))(torch.randn(5, 4, 2, 3) * 3 + 1)
    >>> bool(y.mean(dim=1).abs().max() < 1e-5), bool((y.var(dim=1, correction=0) - 1).abs().max() < 1e-3)
    (True, True)
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.shapes import batch_axes


def pono(x: Tensor, eps: float = 1e-5, dim: int = -3) -> Tensor:
    """Normalise ``x`` across the channel axis ``dim`` at every position (no parameters)."""
    centred = x - x.mean(dim=dim, keepdim=True)
    # the biased variance as the mean of the centred squares (the same two-pass value as
    # Tensor.var, which is several times slower on CPU across a non-innermost axis)
    var = (centred * centred).mean(dim=dim, keepdim=True)
    return centred * torch.rsqrt(var + eps)


class PONOConfig(ComponentConfig):
    """Config of :class:`PONO`."""

    eps: float = Field(default=1e-5, gt=0.0)


@register(
    "conditioners", "pono", version=1, config=PONOConfig,
    summary="Positional normalisation: normalise across channels at each position (no parameters).",
    examples=[{"config": {}, "in_shape": (3, 2, 2), "out_shape": None, "batch": (2,)},
              {"config": {"eps": 1e-3}, "in_shape": (2, 1, 4), "out_shape": (2, 1, 4), "batch": (1, 3)}],
)
class PONO(Conditioner):
    """Positional normalisation over ``(C, H, W)`` inputs; see the module docstring."""

    def __init__(
        self, eps: float = 1e-5, *, in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"PONO: in_shape must be (C, H, W), got {self.in_shape}")
        if out_shape is not None and self.requested_out_shape != self.in_shape:
            raise ShapeError(f"PONO keeps the shape {self.in_shape}; out_shape {self.requested_out_shape} given")
        self.eps = eps

    def output_shape(self) -> tuple[int, ...]:
        return self.in_shape

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        return pono(x, self.eps)
