"""Small helpers shared by the layers: bounded log-scales, channel broadcasting, default nets.

``log_scale`` turns a network's raw output ``h`` into the log of a coupling's scale, bounded as
configured (the NaN/Inf pitfall of unbounded ``exp(h)``):

- ``"exp_clamp"``: ``log s = c * tanh(h / c)`` (soft clamp to ``(-c, c)``; ``s = 1`` at ``h = 0``;
  :func:`eddies.core.bounds.soft_bound`, the bound the priors use for their log-scales);
- ``"sigmoid"``: ``s = sigmoid(h + 2)`` as in Glow's released code (``s ≈ 0.88`` at ``h = 0``);
- ``"exp"``: ``log s = h`` (RealNVP, cglow.txt section 3.3; bound it in the network, e.g. FRMDN's
  Tanh output layer, frmdn.txt section 5).

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS 2018, arXiv:1807.03039; Lu & Huang, "Structured Output Learning with Conditional
Generative Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt); Razavi, Hosseini & Behzad, "FRMDN:
Flow-based Recurrent Mixture Density Network", 2020, arXiv:2008.02144 (frmdn.txt).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from eddies.core import ShapeError, Spec, validate_spec
from eddies.core.bounds import soft_bound

ScaleName = Literal["exp_clamp", "sigmoid", "exp"]


def log_scale(h: Tensor, kind: str, clamp: float) -> Tensor:
    """Log of the bounded scale for raw network output ``h`` (see the module docstring)."""
    if kind == "exp_clamp":
        return soft_bound(h, clamp)
    if kind == "sigmoid":
        return F.logsigmoid(h + 2.0)
    return h


def per_channel(v: Tensor, ndim: int) -> Tensor:
    """View ``(C,)`` or ``(B, C)`` values so they broadcast over a ``(B, C, *spatial)`` tensor."""
    return v.reshape(*v.shape, *([1] * (ndim - 2)))


def pixels(shape: tuple[int, ...]) -> int:
    """Number of positions sharing one channel's parameters: ``H * W`` for images, 1 for vectors."""
    return math.prod(shape[1:])


def default_net(shape: tuple[int, ...]) -> Spec:
    """The default coupling network for inputs of event ``shape``: a zero-started ``mlp`` for
    vectors, Glow's ``cnn`` (zero-started last convolution) for images."""
    if len(shape) == 1:
        return validate_spec({"type": "mlp", "zero_init_last": True}, "conditioners")
    return validate_spec({"type": "cnn"}, "conditioners")


def default_context_net(context_shape: tuple[int, ...]) -> Spec:
    """The default CN of conditional actnorm / 1x1 convolution: a zero-started ``mlp`` for vector
    contexts, c-Glow's ``cglow_vector`` (downscaling convolutions + FC, cglow.txt section 5.1)
    for image contexts."""
    if len(context_shape) == 1:
        return validate_spec({"type": "mlp", "hidden": [32], "zero_init_last": True}, "conditioners")
    return validate_spec({"type": "cglow_vector"}, "conditioners")


def identity_start(spec: Spec, enabled: bool) -> Spec:
    """Ask a conditioner to start at zero output when its config offers ``zero_init_last``."""
    if enabled and "zero_init_last" in type(spec.config).model_fields:
        return spec.replace(zero_init_last=True)
    return spec


def build_net(spec: Spec, in_shape: tuple[int, ...], out_shape: tuple[int, ...], owner: Any) -> Any:
    """Build a conditioner and check that it produces ``out_shape`` (error names ``owner``)."""
    net = spec.build(in_shape=tuple(in_shape), out_shape=tuple(out_shape))
    got = tuple(net.output_shape())
    if got != tuple(out_shape):
        raise ShapeError(
            f"{type(owner).__name__}: conditioner {spec.name!r} built with in_shape={tuple(in_shape)} "
            f"produces {got}, expected {tuple(out_shape)}"
        )
    return net
