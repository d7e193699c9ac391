"""Write stacks of grey images in [0, 1] as one PNG: grids (rows x columns), labelled panels.

:func:`save_grid` writes one grid; with ``row_labels`` or a ``title`` it gets a label column at
the left and a title band on top. :func:`save_panels` writes several grids with the same rows
side by side, each under its own title (e.g. one panel per sampling temperature), sharing one
label column. Text is black on white, in Pillow's default font.

    >>> import torch, tempfile, pathlib
    >>> path = save_grid(torch.rand(6, 4, 5), rows=2, path=pathlib.Path(tempfile.mkdtemp()) / "g.png")
    >>> from PIL import Image; Image.open(path).size   # (width, height) with 1-pixel gaps
    (17, 9)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from eddies.core import ShapeError

PAD = 3  # pixels around a text
SPACE = 8  # pixels between two panels
FONT_SIZE = 13


def grid(images: Tensor, rows: int, gap: int = 1) -> Tensor:
    """``images`` (rows * cols, H, W) in [0, 1], row-major, as one uint8 image with white seams."""
    if images.dim() != 3 or images.shape[0] % rows:
        raise ShapeError(
            f"save_grid: images must have shape (rows * cols, H, W) with rows={rows}, "
            f"got {tuple(images.shape)}"
        )
    levels = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    padded = torch.nn.functional.pad(levels, (0, gap, 0, gap), value=255)
    return rearrange(padded, "(r c) h w -> (r h) (c w)", r=rows)[:-gap or None, :-gap or None]


def render_panels(
    panels: Sequence[tuple[str | None, Tensor]], rows: int, gap: int = 1,
    row_labels: Sequence[str] | None = None, corner: str | None = None,
) -> tuple[Image.Image, list[tuple[int, int]]]:
    """The picture of ``panels`` (title, images) side by side and each panel's top-left pixel (x, y).

    Every panel is a ``rows`` x cols grid of its images (:func:`grid`), centred in a slot as wide
    as its title if that is wider; a title band on top holds the titles (and ``corner`` above
    the label column), ``SPACE`` pixels part the slots, a column at the left holds
    ``row_labels`` (one per row, centred on it). Without titles, labels and with one panel the
    picture is the bare grid.
    """
    if not panels:
        raise ShapeError("save_panels: need at least one panel")
    grids = [(title, grid(images, rows, gap)) for title, images in panels]
    height = grids[0][1].shape[0]
    if any(g.shape[0] != height for _, g in grids):
        raise ShapeError(f"save_panels: every panel needs the same image height, got "
                         f"{[tuple(g.shape) for _, g in grids]}")
    if row_labels is not None and len(row_labels) != rows:
        raise ShapeError(f"save_panels: {len(row_labels)} row labels for {rows} rows")
    if len(grids) == 1 and grids[0][0] is None and row_labels is None and corner is None:
        return Image.fromarray(grids[0][1].numpy()), [(0, 0)]

    font = ImageFont.load_default(size=FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    titled = [t for t, _ in grids if t] + ([corner] if corner else [])
    top = max((size(t)[1] for t in titled), default=-2 * PAD) + 2 * PAD
    texts = [*(row_labels or ()), *([corner] if corner else [])]
    left = max((size(t)[0] for t in texts), default=-2 * PAD) + 2 * PAD
    # each panel's slot is as wide as its grid, or its title when that is wider (grid centred)
    slots = [max(g.shape[1], size(title)[0] + 2 * PAD if title else 0) for title, g in grids]
    width = left + sum(slots) + SPACE * (len(grids) - 1)
    canvas = Image.new("L", (width, top + height), 255)
    draw = ImageDraw.Draw(canvas)

    def text(x: float, y: float, words: str) -> None:  # centred on (x, y)
        x0, y0, x1, y1 = draw.textbbox((0, 0), words, font=font)
        draw.text((round(x - (x0 + x1) / 2), round(y - (y0 + y1) / 2)), words, font=font, fill=0)

    corners, x = [], left
    for (title, g), slot in zip(grids, slots, strict=True):
        corner_x = x + (slot - g.shape[1]) // 2
        canvas.paste(Image.fromarray(g.numpy()), (corner_x, top))
        corners.append((corner_x, top))
        if title:
            text(x + slot / 2, top / 2, title)
        x += slot + SPACE
    if corner:
        text(left / 2, top / 2, corner)
    cell = (height + gap) / rows  # one row of images and its seam
    for r, label in enumerate(row_labels or ()):
        text(left / 2, top + r * cell + (cell - gap) / 2, label)
    return canvas, corners


def save_panels(
    panels: Sequence[tuple[str | None, Tensor]], rows: int, path: Path | str, gap: int = 1,
    row_labels: Sequence[str] | None = None, corner: str | None = None,
) -> Path:
    """Save :func:`render_panels` of ``panels`` as a PNG at ``path``; returns ``path``."""
    image, _ = render_panels(panels, rows, gap, row_labels, corner)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def save_grid(
    images: Tensor, rows: int, path: Path | str, gap: int = 1,
    row_labels: Sequence[str] | None = None, title: str | None = None,
) -> Path:
    """Save ``images`` (rows * cols, H, W) in [0, 1], row-major, as a PNG with ``gap``-pixel seams."""
    return save_panels([(title, images)], rows, path, gap, row_labels)
