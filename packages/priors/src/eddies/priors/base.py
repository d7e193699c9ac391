"""Plumbing shared by the priors: batch/event shape checks, temperature checks, the Gaussian density.

Every prior accepts any number of leading batch axes: ``z`` of shape ``(*batch, *shape)`` with a
context of shape ``(*batch, *context_shape)`` gives ``log_prob`` of shape ``batch``. The sequence
model can therefore score flat batches ``(B*T, d)`` with ``(B*T, H)`` or ``(B, T, d)`` with
``(B, T, H)`` alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from eddies.core import Prior, ShapeError
from eddies.core.shapes import batch_axes

LOG_2PI = math.log(2 * math.pi)


def _fmt(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


def batch_shape(prior: Prior, z: Tensor, event: tuple[int, ...] | None = None, what: str = "z") -> torch.Size:
    """The leading batch axes of ``z`` = ``(*batch, *event)`` (event: the prior's by default)."""
    return batch_axes(prior, z, prior.shape if event is None else tuple(event), what)


def check_context(prior: Prior, context: Tensor | None, batch: torch.Size | None) -> None:
    """Check that a context is given iff the prior is conditional, and that its batch axes match."""
    name = type(prior).__name__
    if prior.context_shape is None:
        if context is not None:
            raise ShapeError(f"{name} was built without context_shape but received a context")
        return
    if context is None:
        raise ShapeError(
            f"{name} is conditional and needs a context of shape (*batch, {_fmt(prior.context_shape)})"
        )
    got = batch_shape(prior, context, prior.context_shape, "context")
    if batch is not None and got != batch:
        raise ShapeError(
            f"{name}: context batch axes {tuple(got)} differ from z's {tuple(batch)} "
            f"(context {tuple(context.shape)}, event shape {prior.shape})"
        )


def sample_batch(prior: Prior, n: int | None, context: Tensor | None) -> torch.Size:
    """Batch axes of a draw: the context's leading axes, or ``(n,)`` without a context."""
    name = type(prior).__name__
    check_context(prior, context, None)
    if prior.context_shape is not None:
        batch = batch_shape(prior, context, prior.context_shape, "context")
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


def bounded_log_scale(raw: Tensor, bound: float) -> Tensor:
    """``b * tanh(raw / b)``: a log-scale softly bounded to ``(-b, b)`` without killing gradients."""
    return bound * torch.tanh(raw / bound)


def diag_normal_log_prob(z: Tensor, mean: Tensor | float, log_scale: Tensor | float, event_dims: int) -> Tensor:
    """``sum_i log N(z_i; mean_i, exp(log_scale_i)^2)`` over the last ``event_dims`` axes."""
    log_scale = torch.as_tensor(log_scale, dtype=z.dtype, device=z.device)
    dens = -0.5 * ((z - mean) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * LOG_2PI
    return dens.sum(dim=tuple(range(-event_dims, 0))) if event_dims else dens
