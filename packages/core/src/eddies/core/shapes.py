"""Shape checks for components that accept any number of leading batch axes.

(Bijections take exactly one batch axis and use :meth:`eddies.core.Bijection.check`.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from eddies.core.errors import ShapeError


def batch_axes(owner: object, x: Tensor, event: tuple[int, ...], what: str = "input") -> torch.Size:
    """The leading batch axes of ``x = (*batch, *event)`` (at least one).

    Raises :class:`ShapeError` naming ``owner``'s class, the expected and the given shape.

    >>> batch_axes("net", torch.zeros(4, 7, 3), (3,))
    torch.Size([4, 7])
    """
    n = len(event)
    if x.dim() <= n or tuple(x.shape[x.dim() - n :]) != tuple(event):
        raise ShapeError(
            f"{type(owner).__name__}: {what} must have shape (*batch, "
            f"{', '.join(map(str, event))}), got {tuple(x.shape)}"
        )
    return x.shape[: x.dim() - n]
