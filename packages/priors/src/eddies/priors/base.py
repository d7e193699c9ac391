"""Plumbing shared by the priors: batch/event shape checks, temperature checks, the diagonal Gaussian.

Every prior accepts any number of leading batch axes: ``z`` of shape ``(*batch, *shape)`` with a
context of shape ``(*batch, *context_shape)`` gives ``log_prob`` of shape ``batch``. The sequence
model can therefore score flat batches ``(B*T, d)`` with ``(B*T, H)`` or ``(B, T, d)`` with
``(B, T, H)`` alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

from eddies.core import Prior, ShapeError
from eddies.core.shapes import batch_axes
from eddies.core.shapes import check_context as core_check_context

LOG_2PI = math.log(2 * math.pi)


def batch_shape(prior: Prior, z: Tensor, event: tuple[int, ...] | None = None, what: str = "z") -> torch.Size:
    """The leading batch axes of ``z`` = ``(*batch, *event)`` (event: the prior's by default)."""
    return batch_axes(prior, z, prior.shape if event is None else tuple(event), what)


def check_context(
    prior: Prior, context: Tensor | None, batch: torch.Size | None, batch_dims: int | None = None
) -> torch.Size | None:
    """A context is given iff the prior is conditional, and its batch axes are ``batch`` (z's)
    when given (exactly ``batch_dims`` of them when given): the project's one context check,
    :func:`eddies.core.shapes.check_context`. Returns the context's batch axes (``None``
    without a context)."""
    return core_check_context(prior, context, prior.context_shape, batch, what="z", batch_dims=batch_dims)


def sample_batch(prior: Prior, n: int | None, context: Tensor | None) -> torch.Size:
    """Batch axes of a draw: the context's leading axes, or ``(n,)`` without a context."""
    name = type(prior).__name__
    batch = check_context(prior, context, None)
    if batch is not None:
        if n is not None and (batch.numel() != n):
            raise ShapeError(
                f"{name}: with a context, sample draws one sample per context row; "
                f"n={n} does not match the context batch {tuple(batch)} (pass n=None)"
            )
        return batch
    if n is None or int(n) < 1:
        raise ShapeError(f"{name}: sample needs the number of samples n >= 1 without a context, got {n}")
    return torch.Size([int(n)])


def check_temperature(prior: Prior, temperature: float) -> float:
    """Temperatures are non-negative numbers (0 returns the mode)."""
    t = float(temperature)
    if not t >= 0.0 or math.isinf(t):
        raise ValueError(f"{type(prior).__name__}: temperature must be finite and >= 0, got {temperature}")
    return t


def diag_normal_log_prob(z: Tensor, mean: Tensor | float, log_scale: Tensor | float, event_dims: int) -> Tensor:
    """``sum_i log N(z_i; mean_i, exp(log_scale_i)^2)`` over the last ``event_dims`` axes."""
    log_scale = torch.as_tensor(log_scale, dtype=z.dtype, device=z.device)
    dens = -0.5 * ((z - mean) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * LOG_2PI
    return dens.sum(dim=tuple(range(-event_dims, 0))) if event_dims else dens


def diag_normal(mean: Tensor, log_scale: Tensor, event_dims: int) -> Independent:
    """``prod_i N(mean_i, exp(log_scale_i)^2)`` over the last ``event_dims`` axes, as a
    ``torch.distributions`` object (``Independent(Normal)``, so ``kl_divergence`` between two of
    them is in closed form); its ``log_prob`` equals :func:`diag_normal_log_prob`."""
    return Independent(Normal(mean, log_scale.exp()), event_dims)
