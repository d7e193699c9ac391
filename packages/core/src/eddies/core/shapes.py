"""Shape checks shared by every component: batch axes of an input, and the context check.

:func:`batch_axes` splits ``(*batch, *event)`` into its batch axes (conditioners and priors take
any number of them; bijections exactly one, ``batch_dims=1``). :func:`check_context` is the one
context check of the project, used by :meth:`eddies.core.Bijection.check_context` and by every
prior: a context is given if and only if the component was built with a ``context_shape``, its
event axes equal ``context_shape``, and its batch axes equal those of the input it comes with.
Every error is a :class:`ShapeError` naming the component's class, the expected and the given
shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from eddies.core.errors import ShapeError


def _fmt(shape: Sequence[int]) -> str:
    return ", ".join(map(str, shape))


def _name(owner: object) -> str:
    """How errors name ``owner``: a string as given, an object by its class."""
    return owner if isinstance(owner, str) else type(owner).__name__


def batch_axes(
    owner: object, x: Tensor, event: tuple[int, ...], what: str = "input", batch_dims: int | None = None
) -> torch.Size:
    """The leading batch axes of ``x = (*batch, *event)``: at least one, or exactly ``batch_dims``.

    Raises :class:`ShapeError` naming ``owner`` (its class, or the string itself), the expected
    and the given shape.

    >>> batch_axes("net", torch.zeros(4, 7, 3), (3,))
    torch.Size([4, 7])
    >>> batch_axes("net", torch.zeros(4, 7, 3), (3,), batch_dims=1)
    Traceback (most recent call last):
    ...
    eddies.core.errors.ShapeError: net: input must have shape (batch, 3), got (4, 7, 3)
    """
    n = len(event)
    lead = "batch" if batch_dims == 1 else "*batch" if batch_dims is None else f"{batch_dims} batch axes"
    bad_batch = x.dim() <= n if batch_dims is None else x.dim() != n + batch_dims
    if bad_batch or tuple(x.shape[x.dim() - n :]) != tuple(event):
        raise ShapeError(
            f"{_name(owner)}: {what} must have shape ({lead}, {_fmt(event)}), got {tuple(x.shape)}"
        )
    return x.shape[: x.dim() - n]


def check_context(
    owner: object,
    context: Tensor | None,
    context_shape: tuple[int, ...] | None,
    batch: Sequence[int] | int | None = None,
    *,
    what: str = "input",
    batch_dims: int | None = None,
) -> torch.Size | None:
    """Check ``context`` against ``context_shape`` and return its batch axes (``None`` if absent).

    - ``context_shape=None`` (unconditional): a context is an error (it would be silently ignored);
    - otherwise a context is required, of shape ``(*batch, *context_shape)`` (exactly
      ``batch_dims`` batch axes when given, e.g. 1 for bijections);
    - ``batch`` (the batch axes of the ``what`` it comes with, or a batch size), when given, must
      equal the context's batch axes.

    >>> check_context("prior", torch.zeros(4, 7, 3), (3,), batch=(4, 7))
    torch.Size([4, 7])
    >>> check_context("prior", torch.zeros(4, 3), (3,), batch=5, what="z")
    Traceback (most recent call last):
    ...
    eddies.core.errors.ShapeError: prior: context batch axes (4,) differ from the z's (5,) (context shape (4, 3))
    """
    name = _name(owner)
    if context_shape is None:
        if context is not None:
            raise ShapeError(
                f"{name} is unconditional but received a context of shape {tuple(context.shape)} "
                "(it was built without context_shape)"
            )
        return None
    if context is None:
        lead = "batch" if batch_dims == 1 else "*batch"
        raise ShapeError(f"{name} is conditional and needs a context of shape ({lead}, {_fmt(context_shape)})")
    got = batch_axes(owner, context, tuple(context_shape), "context", batch_dims)
    if batch is not None:
        expected = (int(batch),) if isinstance(batch, int) else tuple(batch)
        if tuple(got) != expected:
            raise ShapeError(
                f"{name}: context batch axes {tuple(got)} differ from the {what}'s {expected} "
                f"(context shape {tuple(context.shape)})"
            )
    return got
