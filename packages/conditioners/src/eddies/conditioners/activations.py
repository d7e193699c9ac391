"""Activation functions by name, shared by every conditioner's config.

A config field typed :data:`ActivationName` accepts one of :data:`ACTIVATIONS`' keys; ``"none"``
is the identity (useful for ``output_activation``)::

    >>> make_activation("leaky_relu")
    LeakyReLU(negative_slope=0.01)
"""

from __future__ import annotations

from typing import Literal

from torch import nn

ActivationName = Literal[
    "none", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "gelu", "silu", "softplus"
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "none": nn.Identity,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (a key of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}"
        ) from None
