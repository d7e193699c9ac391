"""Write a stack of grey images in [0, 1] as one PNG grid (rows x columns).

    >>> import torch, tempfile, pathlib
    >>> path = save_grid(torch.rand(6, 4, 5), rows=2, path=pathlib.Path(tempfile.mkdtemp()) / "g.png")
    >>> from PIL import Image; Image.open(path).size   # (width, height) with 1-pixel gaps
    (17, 9)
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from PIL import Image
from torch import Tensor

from eddies.core import ShapeError


def save_grid(images: Tensor, rows: int, path: Path | str, gap: int = 1) -> Path:
    """Save ``images`` (rows * cols, H, W) in [0, 1], row-major, as a PNG with ``gap``-pixel seams."""
    if images.dim() != 3 or images.shape[0] % rows:
        raise ShapeError(
            f"save_grid: images must have shape (rows * cols, H, W) with rows={rows}, "
            f"got {tuple(images.shape)}"
        )
    levels = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    padded = torch.nn.functional.pad(levels, (0, gap, 0, gap), value=255)
    grid = rearrange(padded, "(r c) h w -> (r h) (c w)", r=rows)[:-gap or None, :-gap or None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.numpy()).save(path)
    return path
