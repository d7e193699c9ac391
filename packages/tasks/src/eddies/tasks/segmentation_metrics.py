"""Binary-segmentation scores from 2 x 2 confusion matrices: IoU per class, class means, accuracy.

A confusion matrix ``H`` (shape ``(..., 2, 2)``, integer counts) has the true class on the rows
and the predicted class on the columns, class 0 = background, class 1 = foreground::

    H = [[TN, FP],
         [FN, TP]]

The intersection-over-union of class ``c`` (Lu & Huang, "Structured Output Learning with
Conditional Generative Flows", AAAI 2020, arXiv:1905.13288, cglow.txt section 5.2; the c-Glow
authors' code) is

    IoU_c = H_cc / (sum_j H_cj + sum_i H_ic - H_cc),

so the foreground IoU is ``TP / (TP + FP + FN)``.

**Zero union.** A class that neither occurs in the truth nor is predicted has union 0 and no
IoU: :func:`class_iou` returns NaN for it, and :func:`class_mean_iou` averages only the classes
whose union is positive (a perfectly predicted all-background image scores 1, not 0.5 or NaN).
The mean is NaN only when every union is 0, i.e. for an empty matrix. On the Weizmann horses
every image has both classes, so the rule never changes a reported number; it only keeps a
degenerate case (a tiny split, a crop without a horse) from producing a spurious 0.

Keep per-image matrices (:func:`confusion_counts`) and sum them: any pooling can then be
computed afterwards, e.g. the authors' mean over batches of 10 images
(:func:`batch_class_mean_iou`), whatever batch size the evaluation loader used::

    >>> import torch
    >>> truth = torch.tensor([[[0, 1], [1, 1]]])
    >>> pred = torch.tensor([[[0, 0], [1, 1]]])
    >>> H = confusion_counts(pred, truth)
    >>> H.tolist()
    [[[1, 0], [1, 2]]]
    >>> class_iou(H.sum(0)).tolist()      # background 1/2, foreground 2/3
    [0.5, 0.6666666666666666]
    >>> round(class_mean_iou(H.sum(0)).item(), 4), pixel_accuracy(H.sum(0)).item()
    (0.5833, 0.75)
"""

from __future__ import annotations

import torch
from torch import Tensor

from eddies.core import ShapeError

AUTHORS_BATCH = 10  # the c-Glow authors score test batches of 10 images


def confusion_counts(pred: Tensor, truth: Tensor) -> Tensor:
    """Per-image 2 x 2 confusion matrices (N, 2, 2), int64, of {0, 1} maps ``pred``, ``truth`` (N, ...)."""
    if pred.shape != truth.shape or pred.dim() < 1:
        raise ShapeError(
            f"confusion_counts: pred and truth must have the same shape (N, ...), "
            f"got {tuple(pred.shape)} and {tuple(truth.shape)}"
        )
    for name, value in (("pred", pred), ("truth", truth)):
        if value.numel() and not bool(((value == 0) | (value == 1)).all()):
            raise ValueError(f"confusion_counts: {name} must hold only 0 and 1")
    p = pred.reshape(len(pred), -1).long()
    t = truth.reshape(len(truth), -1).long()
    tp = (p * t).sum(1)
    fp = (p * (1 - t)).sum(1)
    fn = ((1 - p) * t).sum(1)
    tn = ((1 - p) * (1 - t)).sum(1)
    return torch.stack([torch.stack([tn, fp], -1), torch.stack([fn, tp], -1)], -2)


def _check(confusion: Tensor) -> Tensor:
    if confusion.shape[-2:] != (2, 2):
        raise ShapeError(f"expected confusion matrices of shape (..., 2, 2), got {tuple(confusion.shape)}")
    return confusion.double()


def class_iou(confusion: Tensor) -> Tensor:
    """IoU of each class, shape (..., 2): ``H_cc / (row_c + column_c - H_cc)``, NaN for a zero union."""
    h = _check(confusion)
    hits = torch.diagonal(h, dim1=-2, dim2=-1)
    union = h.sum(-1) + h.sum(-2) - hits
    return torch.where(union > 0, hits / union.clamp_min(1), torch.full_like(hits, float("nan")))


def class_mean_iou(confusion: Tensor) -> Tensor:
    """Mean IoU over the classes with a positive union, shape (...) (see the module docstring)."""
    return torch.nanmean(class_iou(confusion), dim=-1)


def foreground_iou(confusion: Tensor) -> Tensor:
    """``TP / (TP + FP + FN)``, shape (...); NaN when there is no foreground in truth or prediction."""
    return class_iou(confusion)[..., 1]


def pixel_accuracy(confusion: Tensor) -> Tensor:
    """``(TN + TP) / all pixels``, shape (...)."""
    h = _check(confusion)
    return torch.diagonal(h, dim1=-2, dim2=-1).sum(-1) / h.sum((-2, -1))


def batch_class_mean_iou(per_image: Tensor, batch: int = AUTHORS_BATCH) -> Tensor:
    """The authors' score: the mean over consecutive groups of ``batch`` images of each group's
    class-mean IoU, the group's matrix being the sum of its images' (``per_image``: (N, 2, 2), in
    the order that defines the groups; a last, shorter group counts as one group)."""
    if per_image.dim() != 3 or batch < 1:
        raise ShapeError(
            f"batch_class_mean_iou: per-image matrices must be (N, 2, 2) and batch >= 1, "
            f"got {tuple(per_image.shape)} and batch={batch}"
        )
    groups = torch.stack([chunk.sum(0) for chunk in per_image.split(batch)]) if len(per_image) else per_image
    return class_mean_iou(groups).mean()
