"""Activation normalisation: ``actnorm`` (Glow) and ``cond_actnorm`` (c-Glow, MotionFlow).

References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS
2018, arXiv:1807.03039; Lu & Huang, "Structured Output Learning with Conditional Generative Flows",
AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal
Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt).

cglow.txt section 3.3 ("Actnorm layers") and motionflow.txt eq. 4: per channel ``c``,

    u_{i,j} = s ⊙ v_{i,j} + b,      log|det| = H · W · Σ_c log|s_c|,

with ``s = exp(log_scale)``. ``actnorm`` initialises ``log_scale`` and ``b`` from the first batch
it transforms so that every output channel has zero mean and unit variance (Glow, section 3.1);
the flag ``initialized`` is a buffer, so a loaded model does not re-initialise.

``cond_actnorm`` (cglow.txt section 4.1, "Conditional actnorm": ``s, b = CN(x)``) predicts
``(log s, b)`` per sample from the context with a ``conditioners`` spec (out_shape ``(2C,)``:
first ``C`` the raw log-scale, bounded like a coupling's, then the bias). The default network is
a zero-started ``mlp`` for vector contexts and c-Glow's ``cglow_vector`` (downscaling
convolutions then fully connected layers, cglow.txt section 5.1) for image contexts.
Works on images ``(C, H, W)`` and vectors ``(D,)``.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, ShapeError, Spec, SpecOf, register
from eddies.flows._util import (
    ScaleName,
    build_net,
    default_context_net,
    identity_start,
    log_scale,
    per_channel,
    pixels,
)


class ActNormConfig(ComponentConfig):
    """Config of ``actnorm``."""

    data_init: bool = Field(True, description="initialise from the first batch (Glow)")
    eps: float = Field(1e-6, gt=0, description="added to the batch std at initialisation")


@register(
    "flows", "actnorm", version=1, config=ActNormConfig,
    summary="Per-channel scale and bias with data-dependent initialisation (Glow).",
    examples=[{"config": {}, "shape": (3, 2, 2), "context_shape": None},
              {"config": {}, "shape": (4,), "context_shape": None, "inputs": {"scale": 3.0}}],
)
class ActNorm(Bijection):
    """``z = x * exp(log_scale) + bias`` per channel (cglow.txt section 3.3; motionflow.txt eq. 4).

    Example::

        >>> import torch
        >>> layer = ActNorm(shape=(3, 4, 4))
        >>> z, logdet = layer(torch.randn(8, 3, 4, 4) * 5 + 2)   # first batch initialises
        >>> bool(z.mean(dim=(0, 2, 3)).abs().max() < 1e-5), bool(layer.initialized)
        (True, True)
    """

    def __init__(self, data_init: bool = True, eps: float = 1e-6, *, shape: tuple[int, ...],
                 context_shape=None):
        super().__init__(shape)
        channels = self.shape[0]
        self.eps = eps
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(not data_init))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        dims = [0, *range(2, x.dim())]
        mean, std = x.mean(dim=dims), x.std(dim=dims, unbiased=False)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.bias.copy_(-mean * torch.exp(self.log_scale))
        self.initialized.fill_(True)

    def _logdet(self, x: Tensor) -> Tensor:
        return (self.log_scale.sum() * pixels(self.shape)).expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        if not self.initialized:
            self._initialize(x)
        z = x * per_channel(torch.exp(self.log_scale), x.dim()) + per_channel(self.bias, x.dim())
        return z, self._logdet(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        x = (z - per_channel(self.bias, z.dim())) * per_channel(torch.exp(-self.log_scale), z.dim())
        return x, -self._logdet(z)


class CondActNormConfig(ComponentConfig):
    """Config of ``cond_actnorm``."""

    net: SpecOf("conditioners") | None = Field(
        None, description="CN(context) -> (2C,): raw log-scales then biases; default: a zero-started "
        "mlp (vector context) or c-Glow's cglow_vector (image context)")
    scale: ScaleName = "exp_clamp"
    clamp: float = Field(3.0, gt=0)
    identity_init: bool = Field(True, description="set zero_init_last on conditioners that offer it")


@register(
    "flows", "cond_actnorm", version=1, config=CondActNormConfig,
    summary="c-Glow's conditional actnorm: per-sample scale and bias s, b = CN(x).",
    examples=[{"config": {"net": {"type": "mlp", "hidden": [5], "activation": "tanh"}}, "shape": (2, 2, 2), "context_shape": (3,)},
              {"config": {"net": {"type": "mlp", "hidden": [5], "activation": "tanh"}, "scale": "exp"}, "shape": (3,),
               "context_shape": (2,)}],
)
class CondActNorm(Bijection):
    """``s, b = CN(x)``, ``z = s ⊙ v + b`` per sample and channel (cglow.txt section 4.1).

    Example::

        >>> import torch
        >>> layer = CondActNorm(net=None, shape=(3, 4, 4), context_shape=(5,))
        >>> z, logdet = layer(torch.randn(2, 3, 4, 4), torch.randn(2, 5))
        >>> logdet.tolist()   # zero-started network: identity
        [0.0, 0.0]
    """

    def __init__(self, net: Spec | None = None, scale: str = "exp_clamp", clamp: float = 3.0,
                 identity_init: bool = True, *, shape: tuple[int, ...], context_shape=None):
        if context_shape is None:
            raise ShapeError("cond_actnorm is conditional: it needs a context_shape, got None")
        super().__init__(shape, context_shape)
        net = net if net is not None else default_context_net(self.context_shape)
        self.scale, self.clamp = scale, clamp
        self.net = build_net(identity_start(net, identity_init), self.context_shape, (2 * self.shape[0],), self)

    def _scale_shift(self, context: Tensor) -> tuple[Tensor, Tensor]:
        raw, bias = self.net(context).chunk(2, dim=1)
        return log_scale(raw, self.scale, self.clamp), bias

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        logs, bias = self._scale_shift(context)
        z = x * per_channel(torch.exp(logs), x.dim()) + per_channel(bias, x.dim())
        return z, logs.sum(dim=1) * pixels(self.shape)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        logs, bias = self._scale_shift(context)
        x = (z - per_channel(bias, z.dim())) * per_channel(torch.exp(-logs), z.dim())
        return x, -logs.sum(dim=1) * pixels(self.shape)
