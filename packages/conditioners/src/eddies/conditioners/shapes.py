"""Shape checks shared by the conditioners: clear :class:`ShapeError` messages naming the layer."""

from __future__ import annotations

from eddies.core import ShapeError
from torch import Tensor


def check_event(owner: object, x: Tensor, event: tuple[int, ...], what: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(*batch, *event)`` with at least one batch axis."""
    n = len(event)
    if x.dim() <= n or tuple(x.shape[-n:]) != tuple(event):
        raise ShapeError(
            f"{type(owner).__name__}: {what} must have shape (batch..., "
            f"{', '.join(map(str, event))}), got {tuple(x.shape)}"
        )


def check_out_shape(owner: object, requested: tuple[int, ...] | None, allowed_rank: int) -> None:
    """Raise :class:`ShapeError` if a requested ``out_shape`` has the wrong number of axes."""
    if requested is not None and len(requested) != allowed_rank:
        raise ShapeError(
            f"{type(owner).__name__}: out_shape must have {allowed_rank} axes, got {requested}"
        )
