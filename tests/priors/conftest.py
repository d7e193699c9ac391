"""Variants of the temporal priors shared by their tests: every weight redrawn on request, so the
zero-initialised layers also act."""

from __future__ import annotations

import torch

from eddies.core import build

D64 = torch.float64
MLP = {"type": "mlp", "hidden": [8], "activation": "tanh"}

# name: (prior, config, event shape, context_shape): the built-in residual blocks on vectors,
# sequences and images, a per-step net, and SRVP's Euler state with dt = 1 and 1/2.
TEMPORAL_VARIANTS = {
    "blocks-vector": ("residual_latent", {"hidden": 4}, (3,), None),
    "blocks-1d": ("residual_latent", {"hidden": 3, "dilations": [1, 2]}, (2, 3), None),
    "blocks-image": ("residual_latent", {"hidden": 3, "dilations": [1]}, (2, 2, 3), None),
    "per-step-mlp": ("residual_latent", {"net": MLP, "order": 2}, (3,), None),
    "state": ("euler_state", {"net": MLP}, (2,), (3,)),
    "state-half-step": ("euler_state", {"net": MLP, "dt": 0.5}, (2,), (3,)),
    "state-image-head": ("euler_state", {"net": MLP, "head": MLP}, (2, 2, 2), (3,)),
}


def make_temporal(name: str, randomise: bool = True):
    """The named variant in float64, with every parameter redrawn from N(0, 0.4^2) if asked."""
    kind, config, shape, context_shape = TEMPORAL_VARIANTS[name]
    torch.manual_seed(0)
    prior = build({"type": kind, **config}, "priors", shape=shape, context_shape=context_shape).double()
    if randomise:
        with torch.no_grad():
            for p in prior.parameters():
                p.normal_(0.0, 0.4)
    return prior


def sequence(prior, batch: int = 2, steps: int = 5, seed: int = 1):
    """``z`` (batch, steps, *shape) and the context (batch, *context_shape) or None."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, steps, *prior.shape, generator=g, dtype=D64)
    c = None if prior.context_shape is None else torch.randn(batch, *prior.context_shape, generator=g, dtype=D64)
    return z, c
