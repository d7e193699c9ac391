"""Zero initialisation of a last layer, the device that makes a new flow start as the identity.

Glow (and c-Glow, MotionFlow after it) initialise the last convolution of every coupling and
prior network to zero, so an untrained coupling is the identity map and an untrained residual
prior a random walk; this is also the first defence against NaNs early in training.
"""

from __future__ import annotations

from torch import nn


def zero_init_(layer: nn.Module) -> nn.Module:
    """Set ``layer.weight`` and ``layer.bias`` (when present) to zero, in place; return the layer."""
    nn.init.zeros_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer
