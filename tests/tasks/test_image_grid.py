"""image_grid: bare grids keep their pixel layout; labelled panels put titles above each panel and
one label per row in the left column, and refuse mismatched shapes."""

import numpy as np
import pytest
import torch

from eddies.core import ShapeError
from eddies.tasks.image_grid import SPACE, grid, render_panels, save_grid


def test_a_bare_grid_is_the_images_with_white_seams(tmp_path):
    images = torch.linspace(0, 1, 6)[:, None, None].expand(6, 4, 5)
    pixels = grid(images, rows=2).numpy()
    assert pixels.shape == (2 * 4 + 1, 3 * 5 + 2)
    assert pixels[4].tolist() == [255] * 17 and pixels[:, 5].tolist() == [255] * 9  # the seams
    assert pixels[0, 0] == 0 and pixels[5, 6] == round(255 * 0.8)  # image 4 at row 1, column 1
    image, corners = render_panels([(None, images)], rows=2)
    assert corners == [(0, 0)] and np.array_equal(np.asarray(image), pixels)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(save_grid(images, 2, tmp_path / "g.png"))), pixels)


def test_panels_sit_side_by_side_under_their_titles_with_row_labels():
    black = torch.zeros(6, 10, 10)
    image, corners = render_panels([("temperature 1", black), ("temperature 0.6", black)], rows=3,
                                   row_labels=["0", "1", "2"], corner="class")
    pixels = np.asarray(image)
    (x0, top), (x1, top1) = corners
    assert top == top1 > 0 and x0 > 0 and x1 > x0 + 21 + SPACE  # the titles are wider than the grids
    assert pixels.shape[0] == top + 32 and pixels.shape[1] >= x1 + 21
    for x in (x0, x1):
        assert (pixels[top:, x:x + 21] == grid(black, 3).numpy()).all()  # each panel's images unchanged
        assert (pixels[:top, x:x + 21] < 128).any()  # its title
    assert (pixels[:top, :x0] < 128).any()  # the corner text above the labels
    labels = [pixels[top + r * 11:top + r * 11 + 10, :x0] < 128 for r in range(3)]
    assert all(label.any() for label in labels) and len({label.tobytes() for label in labels}) == 3
    assert (pixels[top:, x0 + 21:x1] == 255).all()  # the space between the panels is blank
    ink = (pixels[:top] < 128).any(axis=0)
    assert not ink[(x0 + x1 + 21) // 2 - SPACE // 2:(x0 + x1 + 21) // 2 + SPACE // 2].any()  # titles apart


@pytest.mark.parametrize(("panels", "rows", "labels", "words"), [
    ([], 2, None, "at least one panel"),
    ([("a", torch.zeros(4, 5, 5)), ("b", torch.zeros(4, 6, 5))], 2, None, "same image height"),
    ([("a", torch.zeros(4, 5, 5))], 2, ["0"], "1 row labels for 2 rows"),
    ([("a", torch.zeros(5, 5, 5))], 2, None, "rows=2"),
])
def test_mismatched_panels_are_shape_errors(panels, rows, labels, words):
    with pytest.raises(ShapeError, match=words):
        render_panels(panels, rows, row_labels=labels)
