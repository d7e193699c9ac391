"""The IoU functions against hand-computed confusion matrices (rows: truth, columns: prediction)."""

import doctest
import math

import pytest
import torch

import eddies.tasks.segmentation_metrics as module
from eddies.core import ShapeError
from eddies.tasks.segmentation_metrics import (
    batch_class_mean_iou,
    class_iou,
    class_mean_iou,
    confusion_counts,
    foreground_iou,
    pixel_accuracy,
)


def test_docstring_examples_run():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_confusion_counts_of_hand_made_maps():
    truth = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[1, 1, 1], [1, 0, 0]]])
    pred = torch.tensor([[[1, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    # image 0: TN 3 (the 0s predicted 0), FP 1, FN 1, TP 1; image 1: TN 2, FN 4
    assert confusion_counts(pred, truth).tolist() == [[[3, 1], [1, 1]], [[2, 0], [4, 0]]]


def test_confusion_counts_refuses_other_shapes_and_values():
    with pytest.raises(ShapeError, match=r"\(2, 3\) and \(2, 4\)"):
        confusion_counts(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="pred must hold only 0 and 1"):
        confusion_counts(torch.full((1, 2), 2), torch.zeros(1, 2))


def test_scores_of_one_matrix():
    h = torch.tensor([[50, 10], [5, 35]])  # TN 50, FP 10, FN 5, TP 35
    background, foreground = 50 / (60 + 55 - 50), 35 / (40 + 45 - 35)
    assert class_iou(h).tolist() == pytest.approx([background, foreground])
    assert foreground_iou(h).item() == pytest.approx(35 / (35 + 10 + 5)) == pytest.approx(0.7)
    assert class_mean_iou(h).item() == pytest.approx((background + foreground) / 2)
    assert pixel_accuracy(h).item() == pytest.approx(0.85)
    batch = torch.stack([h, h.flip(0, 1)])  # swapping both axes swaps the classes
    assert class_iou(batch)[1].tolist() == pytest.approx([foreground, background])


def test_authors_score_groups_consecutive_images_in_tens():
    perfect, coin = torch.tensor([[2, 0], [0, 2]]), torch.tensor([[1, 1], [1, 1]])
    per_image = torch.stack([perfect] * 10 + [coin] * 2)
    # group 1 (images 0-9) sums to [[20, 0], [0, 20]]: IoU 1; group 2 (the 2 left) sums to
    # [[2, 2], [2, 2]]: each class 2 / (4 + 4 - 2) = 1/3
    assert batch_class_mean_iou(per_image).item() == pytest.approx((1 + 1 / 3) / 2)
    # pooled [[22, 2], [2, 22]]: 22 / 26 per class; and the per-image mean differs from both
    assert class_mean_iou(per_image.sum(0)).item() == pytest.approx(22 / 26)
    assert class_mean_iou(per_image).mean().item() == pytest.approx((10 + 2 / 3) / 12)
    # the order defines the groups: one "coin" image in each group changes the score
    reordered = per_image[[10, *range(9), 11, 9]]
    group1 = torch.tensor([[19, 1], [1, 19]])  # 9 perfect + 1 coin
    group2 = torch.tensor([[3, 1], [1, 3]])  # 1 perfect + 1 coin
    expected = (class_mean_iou(group1).item() + class_mean_iou(group2).item()) / 2
    assert expected == pytest.approx((19 / 21 + 3 / 5) / 2)
    assert batch_class_mean_iou(reordered).item() == pytest.approx(expected)
    assert batch_class_mean_iou(per_image, batch=12).item() == pytest.approx(22 / 26)


def test_a_class_with_zero_union_is_left_out_of_the_class_mean():
    empty_and_right = torch.tensor([[4, 0], [0, 0]])  # no horse, none predicted
    iou = class_iou(empty_and_right)
    assert iou[0].item() == 1 and math.isnan(iou[1].item())
    assert class_mean_iou(empty_and_right).item() == 1  # not 0.5, not NaN
    assert math.isnan(foreground_iou(empty_and_right).item())
    all_background = torch.tensor([[3, 0], [1, 0]])  # a horse pixel missed: its IoU is 0, not NaN
    assert class_iou(all_background).tolist() == [0.75, 0.0]
    assert class_mean_iou(all_background).item() == pytest.approx(0.375)
    assert math.isnan(class_mean_iou(torch.zeros(2, 2, dtype=torch.long)).item())
    with pytest.raises(ShapeError, match=r"\(\.\.\., 2, 2\)"):
        class_iou(torch.zeros(3, 3))
