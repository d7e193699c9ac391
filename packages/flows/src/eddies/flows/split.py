"""Glow's multi-scale factor-out as a bijection: ``split``.

References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS
2018, arXiv:1807.03039; Lu & Huang, "Structured Output Learning with Conditional Generative Flows",
AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal
Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt).

In Glow (and c-Glow, cglow.txt section 3.3 "split") half of the channels leave the flow at the
end of each level and are scored by a Gaussian whose mean and log-std a zero-started network
computes from the kept half: ``log N(v2; μ(v1), σ(v1)²)``. That density equals a standard
normal density of

    z2 = (v2 - μ(v1)) ⊙ exp(-log σ(v1)),      log|det| = -Σ log σ(v1),

so ``split`` is this (shape-preserving) affine map of the second half conditioned on the first,
and ``multiscale`` factors ``z2`` out. A standard normal prior on the flow's output then gives
exactly Glow's likelihood, and every layer stays a bijection the conformance kit can check.
Its network is a ``conditioners`` spec (default: one zero-started 3x3 convolution, Glow's
``Conv2dZeros``, for images; one zero-started linear layer for vectors), fed with the kept half;
like Glow's, it does not see the context (it states ``context_shape=None`` and refuses one).
The ``net``'s output is read as ``cross`` (motionflow.txt eq. 7): even
channels the mean, odd ones the log-std. Example::

    >>> import torch
    >>> layer = Split(shape=(4, 2, 2))
    >>> z, logdet = layer(torch.randn(3, 4, 2, 2))     # zero-started: identity
    >>> logdet.tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from eddies.core import ComponentConfig, Spec, SpecOf, register, validate_spec
from eddies.flows.coupling import Coupling


class SplitConfig(ComponentConfig):
    """Config of ``split``."""

    net: SpecOf("conditioners") | None = Field(
        None, description="kept half -> (mean, log-std) interleaved; default: one zero-started conv3x3 / linear")


def _default_split_net(shape: tuple[int, ...]) -> Spec:
    if len(shape) == 1:
        return validate_spec({"type": "mlp", "hidden": [], "zero_init_last": True}, "conditioners")
    return validate_spec({"type": "cnn", "channels": [], "kernel_sizes": [3]}, "conditioners")


@register(
    "flows", "split", version=1, config=SplitConfig,
    summary="Glow's factor-out prior N(v2; μ(v1), σ(v1)) as the bijection z2 = (v2 - μ) / σ.",
    examples=[{"config": {}, "shape": (4, 2, 2), "context_shape": None},
              {"config": {}, "shape": (4,), "context_shape": None}],
)
class Split(Coupling):
    """``z2 = (v2 - μ(v1)) ⊙ exp(-log σ(v1))``, ``z1 = v1`` (see the module docstring)."""

    def __init__(self, net: Spec | None = None, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(mask="half", net=net if net is not None else _default_split_net(shape),
                         scale="exp", shape=shape)

    @property
    def kept_shape(self) -> tuple[int, ...]:
        """Event shape of the half that stays in the flow (the first ``C // 2`` channels)."""
        return self.partition.cond_shape

    def _scale_shift(self, cond: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        mean, log_std = super()._scale_shift(cond, context)  # cross(net output) = (μ, log σ)
        return -log_std, -mean * torch.exp(-log_std)
