"""Composition of bijections: ``chain`` (a list of specs) and the runner shared by composites.

Reference: Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI
2020, arXiv:1905.13288 (cglow.txt).

For ``f = f_K ∘ ... ∘ f_1`` the log-determinants add (cglow.txt eq. 1:
``log p(y|x) = log p(z) + sum_i log|det ∂r_i/∂r_{i-1}|``). Shapes thread through: layer ``i``
is built with ``shape`` = the previous layer's ``out_shape``; every layer receives the chain's
``context_shape``, and the context is passed at run time only to layers that are conditional
(``layer.context_shape is not None``). A composite none of whose children is conditional states
``context_shape = None`` (:func:`composite_context_shape`), so a model sees that its condition
would reach nothing, and refuses a context like any unconditional layer. Example::

    >>> import torch
    >>> from eddies.core import build
    >>> flow = build({"type": "chain", "layers": ["affine_coupling", "reverse", "affine_coupling"]},
    ...              "flows", shape=(4,), context_shape=None)
    >>> z, logdet = flow(torch.randn(2, 4))
    >>> z.shape, logdet.shape
    (torch.Size([2, 4]), torch.Size([2]))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, Spec, SpecOf, register, zeros_logdet


def context_for(layer: Bijection, context: Tensor | None) -> Tensor | None:
    """The context a composite hands ``layer``: only conditional layers receive one."""
    return context if layer.context_shape is not None else None


def composite_context_shape(children: Iterable[Bijection], context_shape) -> tuple[int, ...] | None:
    """A composite's own ``context_shape``: the one it was built with if a child is conditional, else None."""
    return context_shape if any(child.context_shape is not None for child in children) else None


def run_forward(layers: Iterable[Bijection], x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
    """Apply ``layers`` in order, summing log-determinants; context only to conditional layers."""
    logdet = zeros_logdet(x)
    for layer in layers:
        x, ld = layer(x, context_for(layer, context))
        logdet = logdet + ld
    return x, logdet


def run_inverse(layers: Sequence[Bijection], z: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
    """Invert ``layers`` in reverse order, summing the inverse log-determinants."""
    logdet = zeros_logdet(z)
    for layer in reversed(layers):
        z, ld = layer.inverse(z, context_for(layer, context))
        logdet = logdet + ld
    return z, logdet


def build_sequence(specs: Iterable[Spec], shape: tuple[int, ...], context_shape) -> nn.ModuleList:
    """Build specs one after another, each with the previous layer's ``out_shape``."""
    layers = nn.ModuleList()
    for spec in specs:
        layers.append(spec.build(shape=shape, context_shape=context_shape))
        shape = layers[-1].out_shape
    return layers


class ChainConfig(ComponentConfig):
    """Config of ``chain``."""

    layers: list[SpecOf("flows")] = Field(min_length=1, description="flow specs, applied in order")


@register(
    "flows", "chain", version=1, config=ChainConfig,
    summary="Composition of flow layers, applied in order; log-dets add.",
    examples=[
        {"config": {"layers": [{"type": "affine_coupling", "net": {"type": "mlp", "hidden": [6], "activation": "tanh"}},
                               "reverse", {"type": "additive_coupling", "net": {"type": "mlp", "hidden": [6], "activation": "tanh"}}]},
         "shape": (4,), "context_shape": None},
        {"config": {"layers": [{"type": "maf", "hidden": [6]}, "reverse", "elementwise_affine"]},
         "shape": (3,), "context_shape": (2,)},
    ],
)
class Chain(Bijection):
    """``f_K ∘ ... ∘ f_1`` built from a list of specs (see the module docstring)."""

    def __init__(self, layers: list[Spec], *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape, context_shape)
        self.layers = build_sequence(layers, self.shape, self.context_shape)
        self.context_shape = composite_context_shape(self.layers, self.context_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return run_forward(self.layers, x, context)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.out_shape)
        self.check_context(context, z.shape[0])
        return run_inverse(self.layers, z, context)
