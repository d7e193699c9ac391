"""Glow's composites: ``glow_step`` and ``multiscale`` (Glow; c-Glow, cglow.txt Figure 1).

References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS
2018, arXiv:1807.03039; Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR
2017, arXiv:1605.08803; Lu & Huang, "Structured Output Learning with Conditional Generative
Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based
Spatio-Temporal Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391
(motionflow.txt).

``glow_step`` is actnorm -> invertible 1x1 convolution -> affine coupling (cglow.txt section 3.3;
motionflow.txt eqs. 4, 6, 7). Each part is a ``flows`` spec, so the step is made conditional
(c-Glow, cglow.txt section 4.1) by naming the conditional layers, each with its own conditioner::

    {"type": "glow_step", "actnorm": "cond_actnorm", "invconv": "cond_invconv1x1",
     "coupling": {"type": "cond_affine_coupling", "context_net": {"type": "cnn", ...}}}

``multiscale`` is the multi-scale architecture (RealNVP section 3.6; Glow Figure 2; cglow.txt
Figure 1): ``L`` levels of squeeze -> ``K`` steps -> split, the last level without split. At
each split, the second half of the channels is Gaussianised by ``split`` (see its module) and
leaves the flow. The output is the flat concatenation ``[z_1, ..., z_{L-1}, z_L]`` of the
factored-out parts (each flattened in (C, H, W) order) and the final part, of size C·H·W, so
the flow is a bijection onto ``R^(C·H·W)`` and a standard normal prior on it gives Glow's
likelihood. c-Glow with K = 8, L = 3 is one spec::

    {"type": "multiscale", "levels": 3, "steps": 8, "step": <conditional glow_step above>}

Example::

    >>> import torch
    >>> from eddies.core import build
    >>> step = {"type": "glow_step", "coupling": {"type": "affine_coupling",
    ...         "net": {"type": "cnn", "channels": [8], "kernel_sizes": [3, 3]}}}
    >>> flow = build({"type": "multiscale", "levels": 2, "steps": 2, "step": step}, "flows",
    ...              shape=(3, 8, 8), context_shape=None)
    >>> z, logdet = flow(torch.rand(4, 3, 8, 8))
    >>> flow.out_shape, z.shape
    ((192,), torch.Size([4, 192]))
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, ShapeError, Spec, SpecOf, register, zeros_logdet
from eddies.flows.chain import (
    Chain,
    build_sequence,
    composite_context_shape,
    context_for,
    run_forward,
    run_inverse,
)
from eddies.flows.squeeze import Squeeze

_SMALL_CNN = {"type": "cnn", "channels": [4], "kernel_sizes": [3, 3], "norm": "none"}


class GlowStepConfig(ComponentConfig):
    """Config of ``glow_step``."""

    actnorm: SpecOf("flows") = Field("actnorm", description="actnorm or cond_actnorm (or any flow)")
    invconv: SpecOf("flows") = Field("invconv1x1", description="invconv1x1 or cond_invconv1x1")
    coupling: SpecOf("flows") = Field("affine_coupling", description="affine/additive/cond_affine coupling")


@register(
    "flows", "glow_step", version=1, config=GlowStepConfig,
    summary="One step of Glow: actnorm -> 1x1 convolution -> coupling, each optionally conditional.",
    examples=[
        {"config": {"coupling": {"type": "affine_coupling", "net": _SMALL_CNN}}, "shape": (2, 2, 2),
         "context_shape": None},
        {"config": {"actnorm": {"type": "cond_actnorm", "net": {"type": "mlp", "hidden": [4], "activation": "tanh"}},
                    "invconv": {"type": "cond_invconv1x1", "net": {"type": "mlp", "hidden": [4], "activation": "tanh"}},
                    "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [4], "activation": "tanh"},
                                 "context_net": {"type": "mlp", "hidden": [4], "activation": "tanh"}, "context_features": 2}},
         "shape": (3,), "context_shape": (2,)},
    ],
)
class GlowStep(Chain):
    """actnorm -> 1x1 convolution -> coupling (see the module docstring)."""

    def __init__(self, actnorm: Spec, invconv: Spec, coupling: Spec, *, shape: tuple[int, ...],
                 context_shape=None):
        super().__init__([actnorm, invconv, coupling], shape=shape, context_shape=context_shape)


class MultiScaleConfig(ComponentConfig):
    """Config of ``multiscale``."""

    levels: int = Field(3, ge=1, description="L: levels (squeeze -> K steps -> split; no split at the last)")
    steps: int = Field(8, ge=1, description="K: steps per level")
    step: SpecOf("flows") = Field("glow_step", description="the step, built K times per level")
    split: SpecOf("flows") = Field("split", description="the factor-out Gaussianisation")


@register(
    "flows", "multiscale", version=1, config=MultiScaleConfig,
    summary="Glow's multi-scale architecture: L levels of squeeze -> K steps -> split; flat output.",
    examples=[
        {"config": {"levels": 2, "steps": 1,
                    "step": {"type": "glow_step", "coupling": {"type": "affine_coupling", "net": _SMALL_CNN}}},
         "shape": (1, 4, 4), "context_shape": None},
        {"config": {"levels": 2, "steps": 1,
                    "step": {"type": "glow_step",
                             "actnorm": {"type": "cond_actnorm", "net": {"type": "mlp", "hidden": [4], "activation": "tanh"}},
                             "coupling": {"type": "affine_coupling", "net": _SMALL_CNN}}},
         "shape": (1, 4, 4), "context_shape": (2,)},
    ],
)
class MultiScale(Bijection):
    """Glow's multi-scale flow with flat output (see the module docstring)."""

    def __init__(self, levels: int = 3, steps: int = 8, step: Spec | None = None, split: Spec | None = None, *,
                 shape: tuple[int, ...], context_shape=None):
        super().__init__(shape, context_shape)
        if len(self.shape) != 3 or self.shape[1] % 2**levels or self.shape[2] % 2**levels:
            raise ShapeError(
                f"MultiScale: needs (C, H, W) with H and W divisible by 2**levels = {2**levels}, got {self.shape}"
            )
        step = step if step is not None else MultiScaleConfig().step
        split = split if split is not None else MultiScaleConfig().split
        self.levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        current = self.shape
        for level in range(levels):
            squeeze = Squeeze(shape=current)
            layers = build_sequence([step] * steps, squeeze.out_shape, self.context_shape)
            layers.insert(0, squeeze)
            current = layers[-1].out_shape
            self.levels.append(layers)
            if level < levels - 1:
                self.splits.append(split.build(shape=current, context_shape=self.context_shape))
                current = self.splits[-1].kept_shape
        self.final_shape = current
        children = [*(layer for layers in self.levels for layer in layers), *self.splits]
        self.context_shape = composite_context_shape(children, self.context_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (math.prod(self.shape),)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        logdet = zeros_logdet(x)
        factored = []
        for level, layers in enumerate(self.levels):
            x, ld = run_forward(layers, x, context)
            logdet = logdet + ld
            if level < len(self.splits):
                split = self.splits[level]
                x, ld = split(x, context_for(split, context))
                logdet = logdet + ld
                kept = split.kept_shape[0]
                factored.append(x[:, kept:].flatten(1))
                x = x[:, :kept]
        return torch.cat([*factored, x.flatten(1)], dim=1), logdet

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.out_shape)
        self.check_context(context, z.shape[0])
        sizes = [math.prod(s.shape) - math.prod(s.kept_shape) for s in self.splits]
        parts = list(z.split([*sizes, math.prod(self.final_shape)], dim=1))
        x = parts.pop().reshape(-1, *self.final_shape)
        logdet = zeros_logdet(z)
        for level in reversed(range(len(self.levels))):
            if level < len(self.splits):
                split = self.splits[level]
                out = parts.pop().reshape(-1, split.shape[0] - split.kept_shape[0], *split.shape[1:])
                x, ld = split.inverse(torch.cat([x, out], dim=1), context_for(split, context))
                logdet = logdet + ld
            x, ld = run_inverse(self.levels[level], x, context)
            logdet = logdet + ld
        return x, logdet
