"""Coupling layers: affine (RealNVP, Glow, c-Glow, MotionFlow, FRMDN) and additive (NICE).

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS 2018, arXiv:1807.03039; Dinh, Krueger & Bengio, "NICE: Non-linear Independent Components
Estimation", 2014, arXiv:1410.8516; Lu & Huang, "Structured Output Learning with Conditional
Generative Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based
Spatio-Temporal Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391
(motionflow.txt); Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network",
2020, arXiv:2008.02144 (frmdn.txt).

Affine coupling, cglow.txt section 3.3 and frmdn.txt section 3.2::

    v1, v2 = split(v);   s2, b2 = NN(v1);   u2 = s2 * v2 + b2;   u = concat(v1, u2)

with ``log|det| = sum(log s2)``. The conditional version (cglow.txt section 4.1, "Conditional
affine coupling"; motionflow.txt eq. 7) feeds ``NN`` with the kept half concatenated (along
channels/features) with conditioning features ``x_r = CN(x)``::

    x_r = CN(x);   s2, b2 = NN(concat(v1, x_r));   u2 = s2 * v2 + b2

One network ``net`` predicts ``(s, b)`` interleaved along axis 1 (MotionFlow's ``cross``: even
entries are the raw scale, odd ones the shift), or two networks ``scale_net`` and ``shift_net``
predict them separately (FRMDN's s- and t-nets). Networks are ``conditioners`` specs, built with
``in_shape`` = the kept part's shape (plus context features) and ``out_shape`` = the transformed
part's shape (times 2 for ``net``). With ``identity_init`` (default) every conditioner offering
``zero_init_last`` starts at zero, so with ``scale="exp_clamp"`` or ``"exp"`` a new coupling is
the identity (``"sigmoid"`` starts at Glow's scale ``sigmoid(2)``).

Additive coupling (NICE): ``u2 = v2 + b2``, ``log|det| = 0``.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import Tensor

from eddies.core import (
    Bijection,
    ComponentConfig,
    ShapeError,
    Spec,
    SpecOf,
    register,
    sum_except_batch,
    zeros_logdet,
)
from eddies.flows._util import ScaleName, build_net, default_net, identity_start, log_scale
from eddies.flows.partition import MaskName, Partition


class AdditiveCouplingConfig(ComponentConfig):
    """Config of ``additive_coupling``."""

    mask: MaskName = Field("half", description="half | alternate | checkerboard (images)")
    flip: bool = Field(False, description="transform the other part")
    net: SpecOf("conditioners") | None = Field(
        None, description="shift network; default a zero-started mlp (vectors) or Glow's cnn (images)")
    identity_init: bool = Field(True, description="set zero_init_last on conditioners that offer it")


class AffineCouplingConfig(AdditiveCouplingConfig):
    """Config of ``affine_coupling``."""

    net: SpecOf("conditioners") | None = Field(
        None, description="one network predicting (scale, shift) interleaved; default as additive")
    scale_net: SpecOf("conditioners") | None = Field(None, description="separate scale network (FRMDN's s)")
    shift_net: SpecOf("conditioners") | None = Field(None, description="separate shift network (FRMDN's t)")
    scale: ScaleName = Field("exp_clamp", description="bound on the scale: exp_clamp | sigmoid | exp")
    clamp: float = Field(2.0, gt=0, description="c of exp_clamp: log s = c tanh(h / c)")

    @model_validator(mode="after")
    def _one_way(self) -> AffineCouplingConfig:
        separate = (self.scale_net is not None, self.shift_net is not None)
        if any(separate) and not all(separate):
            raise ValueError("give both scale_net and shift_net, or neither (then net predicts both)")
        if all(separate) and self.net is not None:
            raise ValueError("give either net or scale_net + shift_net, not both")
        return self


class CondAffineCouplingConfig(AffineCouplingConfig):
    """Config of ``cond_affine_coupling``."""

    context_net: SpecOf("conditioners") | None = Field(
        None, description="CN(x) whose features are concatenated with the kept part; "
        "None uses the context itself (its trailing axes must match the kept part's)")
    context_features: int = Field(16, ge=1, description="channels/features of CN(x) (c-Glow: 16)")


class Coupling(Bijection):
    """Affine or additive coupling; see the module docstring for the equations.

    Example (FRMDN's coupling with separate s- and t-nets)::

        >>> import torch
        >>> from eddies.core import build
        >>> s = {"type": "mlp", "hidden": [8], "activation": "leaky_relu", "output_activation": "tanh"}
        >>> t = {"type": "mlp", "hidden": [8], "activation": "leaky_relu"}
        >>> layer = build({"type": "affine_coupling", "scale_net": s, "shift_net": t, "scale": "exp"},
        ...               "flows", shape=(4,), context_shape=None)
        >>> x = torch.randn(3, 4)
        >>> z, logdet = layer(x)
        >>> torch.allclose(layer.inverse(z)[0], x, atol=1e-6), logdet.shape
        (True, torch.Size([3]))
    """

    def __init__(
        self,
        mask: str = "half",
        flip: bool = False,
        net: Spec | None = None,
        scale_net: Spec | None = None,
        shift_net: Spec | None = None,
        scale: str | None = "exp_clamp",
        clamp: float = 2.0,
        identity_init: bool = True,
        context_net: Spec | None = None,
        context_features: int = 16,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        self.partition = Partition(self.shape, mask, flip, type(self).__name__)
        self.scale, self.clamp = scale, clamp
        cond, trans = self.partition.cond_shape, self.partition.trans_shape
        in_shape = cond
        self.context_net = None
        if self.context_shape is not None:
            if context_net is not None:
                feat = (context_features, *cond[1:])
                self.context_net = build_net(context_net, self.context_shape, feat, self)
            else:
                feat = self.context_shape
            if tuple(feat[1:]) != tuple(cond[1:]):
                raise ShapeError(
                    f"{type(self).__name__}: context features {tuple(feat)} cannot be concatenated "
                    f"with the kept part {tuple(cond)}: trailing axes differ (give cond_affine_coupling a context_net)"
                )
            in_shape = (cond[0] + feat[0], *cond[1:])
        self.net = self.scale_net = self.shift_net = None
        if scale_net is not None:
            self.scale_net = build_net(identity_start(scale_net, identity_init), in_shape, trans, self)
            self.shift_net = build_net(identity_start(shift_net, identity_init), in_shape, trans, self)
        else:
            out = trans if scale is None else (2 * trans[0], *trans[1:])
            spec = identity_start(net if net is not None else default_net(self.shape), identity_init)
            self.net = build_net(spec, in_shape, out, self)

    def _scale_shift(self, cond: Tensor, context: Tensor | None) -> tuple[Tensor | None, Tensor]:
        """``(log s, b)`` restricted to the transformed part (``log s`` is None if additive)."""
        if self.context_shape is not None:
            feat = context if self.context_net is None else self.context_net(context)
            cond = torch.cat([cond, feat], dim=1)
        if self.net is None:
            raw, shift = self.scale_net(cond), self.shift_net(cond)
        elif self.scale is None:
            raw, shift = None, self.net(cond)
        else:
            h = self.net(cond)
            raw, shift = h[:, 0::2], h[:, 1::2]
        logs = None if raw is None else self.partition.restrict(log_scale(raw, self.scale, self.clamp))
        return logs, self.partition.restrict(shift)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        cond, trans = self.partition.split(x)
        logs, shift = self._scale_shift(cond, context)
        if logs is None:
            return self.partition.merge(cond, trans + shift), zeros_logdet(x)
        return self.partition.merge(cond, trans * torch.exp(logs) + shift), sum_except_batch(logs)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        cond, trans = self.partition.split(z)
        logs, shift = self._scale_shift(cond, context)
        if logs is None:
            return self.partition.merge(cond, trans - shift), zeros_logdet(z)
        return self.partition.merge(cond, (trans - shift) * torch.exp(-logs)), -sum_except_batch(logs)


_VEC_NET = {"type": "mlp", "hidden": [6], "activation": "tanh"}
_IMG_NET = {"type": "cnn", "channels": [4], "kernel_sizes": [3, 3], "norm": "none"}


@register(
    "flows", "affine_coupling", version=1, config=AffineCouplingConfig,
    summary="Affine coupling u2 = s(v1) * v2 + b(v1) with a bounded scale (RealNVP, Glow, FRMDN).",
    examples=[
        {"config": {"net": _VEC_NET}, "shape": (4,), "context_shape": None},
        {"config": {"mask": "alternate", "flip": True, "scale": "sigmoid", "net": _VEC_NET},
         "shape": (5,), "context_shape": None},
        {"config": {"scale": "exp", "scale_net": {"type": "mlp", "hidden": [6], "activation": "leaky_relu",
                                                   "output_activation": "tanh"},
                    "shift_net": {"type": "mlp", "hidden": [6], "activation": "leaky_relu"}},
         "shape": (4,), "context_shape": None},
        {"config": {"net": _IMG_NET}, "shape": (4, 3, 3), "context_shape": None},
        {"config": {"mask": "checkerboard", "net": _IMG_NET}, "shape": (2, 4, 4), "context_shape": None},
    ],
)
def affine_coupling(*, context_shape=None, **kwargs) -> Coupling:
    """Build an unconditional affine :class:`Coupling` (it states ``context_shape=None`` whatever it is
    built with, and refuses a context at run time)."""
    return Coupling(**kwargs)


@register(
    "flows", "additive_coupling", version=1, config=AdditiveCouplingConfig,
    summary="Additive coupling u2 = v2 + b(v1) (NICE); volume preserving.",
    examples=[
        {"config": {"net": _VEC_NET}, "shape": (3,), "context_shape": None},
        {"config": {"mask": "checkerboard", "flip": True, "net": _IMG_NET}, "shape": (1, 4, 4),
         "context_shape": None},
    ],
)
def additive_coupling(*, context_shape=None, **kwargs) -> Coupling:
    """Build an unconditional additive :class:`Coupling` (it states ``context_shape=None`` whatever it
    is built with, and refuses a context at run time)."""
    return Coupling(scale=None, **kwargs)


@register(
    "flows", "cond_affine_coupling", version=1, config=CondAffineCouplingConfig,
    summary="c-Glow's conditional affine coupling: NN(concat(v1, CN(x))) gives (s, b).",
    examples=[
        {"config": {"net": _IMG_NET, "context_net": {"type": "cnn", "channels": [3], "kernel_sizes": [3, 1], "norm": "none",
                                                      "zero_init_last": False},
                    "context_features": 2},
         "shape": (2, 3, 3), "context_shape": (1, 3, 3)},
        {"config": {"net": _VEC_NET, "context_net": {"type": "mlp", "hidden": [5], "activation": "tanh"}, "context_features": 3},
         "shape": (3,), "context_shape": (2,)},
    ],
)
def cond_affine_coupling(*, context_shape: tuple[int, ...] | None = None, **kwargs) -> Coupling:
    """Build a conditional affine :class:`Coupling` (cglow.txt section 4.1); needs a context."""
    if context_shape is None:
        raise ShapeError("cond_affine_coupling is conditional: it needs a context_shape, got None")
    return Coupling(context_shape=context_shape, **kwargs)
