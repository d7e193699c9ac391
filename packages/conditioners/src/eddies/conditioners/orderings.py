"""Generation orderings of an H x W grid, for locally masked convolutions (LMConv).

An ordering is a rank map: ``rank[h, w]`` is the step at which position ``(h, w)`` is generated
(0 first). LMConv (Jain, Abbeel & Pathak, UAI 2020, arXiv:2006.12486; used by MotionFlow: Zand,
Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391, motionflow.txt sections 3.2 and 4.3,
figure 1) lets every output position see only inputs earlier in the ordering. Four curves, each in its eight
variants of the square's symmetry group (``transpose`` first, then ``flip_rows`` and
``flip_cols``):

- ``raster``: row by row, left to right. On MotionFlow's mocap image (rows = frames,
  columns = joints) this is the *temporal* order: frame by frame.
- ``column_major``: column by column, top to bottom (the transpose of ``raster``): joint by
  joint, MotionFlow's *spatial* order.
- ``s_curve``: rows alternate direction (boustrophedon), so consecutive steps are neighbours.
- ``hilbert``: the Hilbert curve of the smallest power-of-two square covering the grid,
  restricted to the grid (a contiguous curve when the grid is that square; otherwise still a
  valid ordering that visits the grid in Hilbert order).

Example::

    >>> ordering_ranks(Ordering(curve="s_curve"), 2, 3).tolist()
    [[0, 1, 2], [5, 4, 3]]
    >>> ordering_ranks(Ordering(curve="raster", flip_rows=True), 2, 2).tolist()
    [[2, 3], [0, 1]]
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import model_validator
from torch import Tensor

from eddies.core import ComponentConfig

CurveName = Literal["raster", "column_major", "s_curve", "hilbert"]


class Ordering(ComponentConfig):
    """A curve and one of its eight reflections/transposes; a bare string names the curve."""

    curve: CurveName = "raster"
    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"curve": value} if isinstance(value, str) else value

    def key(self) -> tuple[str, bool, bool, bool]:
        """Hashable identity (for caching masks)."""
        return (self.curve, self.transpose, self.flip_rows, self.flip_cols)


def _hilbert_index(x: Tensor, y: Tensor, n: int) -> Tensor:
    """Distance along the Hilbert curve of an n x n grid (n a power of two) of points (x, y)."""
    d = torch.zeros_like(x)
    s = n // 2
    while s > 0:
        rx = ((x & s) > 0).long()
        ry = ((y & s) > 0).long()
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant so the sub-curve has the standard orientation
        flip = (ry == 0) & (rx == 1)
        x = torch.where(flip, s - 1 - x, x)
        y = torch.where(flip, s - 1 - y, y)
        swap = ry == 0
        x, y = torch.where(swap, y, x), torch.where(swap, x, y)
        s //= 2
    return d


def _curve_ranks(curve: str, h: int, w: int) -> Tensor:
    rows = torch.arange(h).view(h, 1).expand(h, w)
    cols = torch.arange(w).view(1, w).expand(h, w)
    if curve == "raster":
        key = rows * w + cols
    elif curve == "column_major":
        key = cols * h + rows
    elif curve == "s_curve":
        key = rows * w + torch.where(rows % 2 == 1, w - 1 - cols, cols)
    elif curve == "hilbert":
        n = 1
        while n < max(h, w):
            n *= 2
        key = _hilbert_index(cols.reshape(-1).clone(), rows.reshape(-1).clone(), n).view(h, w)
    else:
        raise ValueError(f"unknown ordering curve {curve!r}; known: raster, column_major, s_curve, hilbert")
    ranks = torch.empty(h * w, dtype=torch.long)
    ranks[key.reshape(-1).argsort()] = torch.arange(h * w)
    return ranks.view(h, w)


def ordering_ranks(ordering: Ordering, h: int, w: int) -> Tensor:
    """Rank map ``(h, w)`` (a permutation of ``0..h*w-1``) of ``ordering`` on an h x w grid."""
    if ordering.transpose:
        ranks = _curve_ranks(ordering.curve, w, h).T
    else:
        ranks = _curve_ranks(ordering.curve, h, w)
    if ordering.flip_rows:
        ranks = ranks.flip(0)
    if ordering.flip_cols:
        ranks = ranks.flip(1)
    return ranks.contiguous()
