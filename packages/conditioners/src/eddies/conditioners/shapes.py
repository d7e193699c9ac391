"""Shape checks shared by the conditioners: clear :class:`ShapeError` messages naming the layer."""

from __future__ import annotations

from torch import Tensor

from eddies.core import ShapeError


def check_event(owner: object, x: Tensor, event: tuple[int, ...], what: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is ``(*batch, *event)`` with at least one batch axis."""
    n = len(event)
    if x.dim() <= n or tuple(x.shape[-n:]) != tuple(event):
        raise ShapeError(
            f"{type(owner).__name__}: {what} must have shape (batch..., "
            f"{', '.join(map(str, event))}), got {tuple(x.shape)}"
        )

