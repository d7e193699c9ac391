"""Frame metrics of video prediction: PSNR, Gaussian-window SSIM, summed squared error, best of N.

The conventions are those of the moving-MNIST protocol pages (``../shared/protocols/srvp_smmnist.md``,
``../shared/protocols/motionrnn_mmnist.md``); SSIM is Wang, Bovik, Sheikh & Simoncelli, "Image
quality assessment: from error visibility to structural similarity", IEEE TIP 2004. Frames are
``(..., C, H, W)`` with values in [0, 1] (data range L = 1); every function returns one value
per frame, shape ``(...)``:

- :func:`psnr`: ``PSNR = 10 log10(L^2 / MSE)``, ``MSE`` the mean over the frame's C·H·W values of
  the squared error. A perfect frame (MSE = 0) would give +inf; MSE is floored at
  :data:`MSE_FLOOR` (1e-10), so PSNR is at most 100 dB.
- :func:`ssim`: with ``G`` the 11 x 11 Gaussian window of standard deviation 1.5 (normalised to
  sum 1) applied as a "valid" correlation (no padding: an H x W frame gives an
  (H - 10) x (W - 10) map), ``μ_x = G * x``, ``σ_x² = G * x² - μ_x²``, ``σ_xy = G * (x y) - μ_x μ_y``,
  ``C1 = (K1 L)²``, ``C2 = (K2 L)²`` with K1 = 0.01, K2 = 0.03,

      SSIM(x, y) = mean over the map and the channels of
                   (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)).

- :func:`mse_sum`: ``Σ over the frame's C·H·W values of (x̂ - x)²``: PredRNN's and MotionRNN's
  "MSE per frame" (their code sums over the pixels of each frame, then averages over sequences);
  it grows with the frame's area, so a 32 x 32 figure is not comparable with a 64 x 64 one.

:class:`VideoScores` gathers these over test batches: given ``N`` sampled futures per sequence it
keeps, per metric, the **best** sample of each sequence (the one whose mean over the predicted
frames is best: highest PSNR / SSIM, lowest summed error; chosen per sequence *and per metric*,
as SRVP's evaluation) and one **random** sample (the first draw: the draws are independent, so
the first is a random one), and reports for each the mean over sequences of the sequence score
with its 95% confidence half-width ``1.96 s / sqrt(n)`` (``s`` the sample standard deviation of
the n sequence scores, ddof 1) and the per-frame curves (the mean over sequences at each
predicted frame, of the sample chosen by the sequence score).

Example::

    >>> import torch
    >>> truth = torch.zeros(1, 1, 16, 16)
    >>> round(float(psnr(truth + 0.1, truth)[0]), 6)           # 10 log10(1 / 0.01)
    20.0
    >>> round(float(mse_sum(truth + 0.1, truth)[0]), 4)         # 256 pixels x 0.1^2
    2.56
    >>> float(ssim(truth + 0.5, truth + 0.5)[0])
    1.0
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from eddies.core import ShapeError

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03  # the standard SSIM constants (Wang et al. 2004)
MSE_FLOOR = 1e-10  # PSNR's MSE floor: at most 100 dB for L = 1
Z95 = 1.96  # the 95% normal quantile of the confidence half-widths
METRICS: dict[str, Literal["min", "max"]] = {"psnr": "max", "ssim": "max", "mse_sum": "min"}
SELECTIONS: tuple[str, ...] = ("best", "random")


def _pair(pred: Tensor, truth: Tensor, name: str) -> tuple[Tensor, Tensor]:
    if pred.shape != truth.shape or pred.dim() < 3:
        raise ShapeError(f"{name}: prediction and truth must both be frames (..., C, H, W) of one shape, "
                         f"got {tuple(pred.shape)} and {tuple(truth.shape)}")
    return pred.double(), truth.double()


def psnr(pred: Tensor, truth: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame PSNR in dB of frames (..., C, H, W) (module docstring); shape (...)."""
    pred, truth = _pair(pred, truth, "psnr")
    mse = (pred - truth).pow(2).mean((-3, -2, -1)).clamp_min(MSE_FLOOR)
    return 10 * torch.log10(data_range**2 / mse)


def mse_sum(pred: Tensor, truth: Tensor) -> Tensor:
    """Per-frame sum over the C·H·W values of the squared error (PredRNN's "MSE per frame"); shape (...)."""
    pred, truth = _pair(pred, truth, "mse_sum")
    return (pred - truth).pow(2).sum((-3, -2, -1))


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> Tensor:
    """The 1-D Gaussian ``exp(-(i - c)² / 2σ²)``, i = 0..size-1, c = (size - 1) / 2, normalised to sum 1
    (float64); the 2-D window is its outer product with itself."""
    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(images: Tensor, g: Tensor) -> Tensor:
    """Valid correlation of (M, 1, H, W) images with the separable window ``g ⊗ g``."""
    k = len(g)
    rows = torch.nn.functional.conv2d(images, g.view(1, 1, k, 1))
    return torch.nn.functional.conv2d(rows, g.view(1, 1, 1, k))


def ssim(pred: Tensor, truth: Tensor, data_range: float = 1.0, window: int = WINDOW, sigma: float = SIGMA,
         k1: float = K1, k2: float = K2) -> Tensor:
    """Per-frame SSIM of frames (..., C, H, W) with a ``window`` x ``window`` Gaussian window of
    standard deviation ``sigma``, valid region, averaged over the map and the channels (module
    docstring); shape (...). Frames need H, W >= ``window``."""
    pred, truth = _pair(pred, truth, "ssim")
    *lead, c, h, w = pred.shape
    if h < window or w < window:
        raise ShapeError(f"ssim: frames of {h} x {w} are smaller than the {window} x {window} window")
    g = gaussian_window(window, sigma).to(pred.device)
    x, y = pred.reshape(-1, 1, h, w), truth.reshape(-1, 1, h, w)
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    var_x = _filter(x * x, g) - mu_x**2
    var_y = _filter(y * y, g) - mu_y**2
    cov = _filter(x * y, g) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean((-2, -1)).reshape(*lead, c).mean(-1)


FRAME_METRICS = {"psnr": psnr, "ssim": ssim, "mse_sum": mse_sum}


def frame_scores(samples: Tensor, truth: Tensor) -> dict[str, Tensor]:
    """Every metric of :data:`METRICS` per sample and frame: ``samples`` (N, B, T, C, H, W), ``truth``
    (B, T, C, H, W), both clipped to [0, 1] first; returns name -> (N, B, T) float64."""
    if samples.dim() != 6 or tuple(samples.shape[1:]) != tuple(truth.shape):
        raise ShapeError(f"frame_scores: samples must be (N, B, T, C, H, W) with (B, T, C, H, W) = the truth's "
                         f"{tuple(truth.shape)}, got {tuple(samples.shape)}")
    pred = samples.clamp(0, 1)
    target = truth.clamp(0, 1).unsqueeze(0).expand_as(pred)
    return {name: FRAME_METRICS[name](pred, target) for name in METRICS}


def best_of(sequence_scores: Tensor, direction: Literal["min", "max"]) -> Tensor:
    """The index of the best of N samples for each sequence: ``sequence_scores`` (N, B) -> (B,) long
    (argmax for "max", argmin for "min"; the first on ties)."""
    return sequence_scores.argmax(0) if direction == "max" else sequence_scores.argmin(0)


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """``(mean, 1.96 s / sqrt(n))`` of a 1-D tensor (``s`` the ddof-1 standard deviation; 0 for n = 1)."""
    values = values.double().flatten()
    n = values.numel()
    if n == 0:
        return math.nan, math.nan
    half = Z95 * values.std(unbiased=True).item() / math.sqrt(n) if n > 1 else 0.0
    return values.mean().item(), half


class VideoScores:
    """Accumulates the per-frame metrics of best-of-N and random-sample predictions over batches.

    :meth:`add` takes ``samples`` (N, B, T, C, H, W) and the ``truth`` (B, T, C, H, W); a
    deterministic prediction is N = 1 (best = random = the prediction). :meth:`summary` gives
    the plain-float metrics ``<metric>_<selection>_mean``, ``<metric>_<selection>_ci95`` and
    ``<metric>_<selection>_step_<k>`` (k = 1..T) for metric in psnr, ssim, mse_sum and selection
    in best, random (:func:`metric_names`).
    """

    def __init__(self, frames: int):
        self.frames = int(frames)
        self.values: dict[tuple[str, str], list[Tensor]] = {(m, s): [] for m in METRICS for s in SELECTIONS}

    def add(self, samples: Tensor, truth: Tensor) -> None:
        if samples.dim() != 6 or samples.shape[2] != self.frames:
            raise ShapeError(f"VideoScores: samples must be (N, B, T = {self.frames}, C, H, W), "
                             f"got {tuple(samples.shape)}")
        for name, scores in frame_scores(samples, truth).items():  # (N, B, T)
            chosen = best_of(scores.mean(-1), METRICS[name])
            rows = torch.arange(scores.shape[1], device=scores.device)
            self.values[(name, "best")].append(scores[chosen, rows].cpu())
            self.values[(name, "random")].append(scores[0].cpu())

    def count(self) -> int:
        """The number of sequences added."""
        return sum(len(v) for v in self.values[("psnr", "best")])

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (name, selection), parts in self.values.items():
            per_frame = torch.cat(parts) if parts else torch.zeros(0, self.frames, dtype=torch.float64)
            mean, half = mean_ci95(per_frame.mean(-1))
            out[f"{name}_{selection}_mean"], out[f"{name}_{selection}_ci95"] = mean, half
            curve = per_frame.mean(0) if len(per_frame) else torch.full((self.frames,), math.nan)
            out.update({f"{name}_{selection}_step_{k + 1}": curve[k].item() for k in range(self.frames)})
        return out


def metric_names(frames: int) -> dict[str, Literal["min", "max"]]:
    """Every name :meth:`VideoScores.summary` gives for ``frames`` predicted frames, with its direction.

    ``*_ci95`` (a confidence half-width, not a quality) is declared ``"min"`` only because every
    declared metric needs a direction; monitor a ``*_mean`` instead.
    """
    names: dict[str, Literal["min", "max"]] = {}
    for name, direction in METRICS.items():
        for selection in SELECTIONS:
            names[f"{name}_{selection}_mean"] = direction
            names[f"{name}_{selection}_ci95"] = "min"
            names.update({f"{name}_{selection}_step_{k}": direction for k in range(1, frames + 1)})
    return names


__all__ = ["FRAME_METRICS", "METRICS", "MSE_FLOOR", "SELECTIONS", "VideoScores", "best_of", "frame_scores",
           "gaussian_window", "mean_ci95", "metric_names", "mse_sum", "psnr", "ssim"]
