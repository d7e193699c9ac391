"""Video metrics (issue 14/15): PSNR, Gaussian-window SSIM against a reference written from the
formula with explicit loops, the summed squared error, best of N per sequence and per metric."""

import doctest
import math

import numpy as np
import pytest
import torch

from eddies.core import ShapeError
from eddies.tasks import video_metrics
from eddies.tasks.video_metrics import VideoScores, best_of, mean_ci95, metric_names, mse_sum, psnr, ssim


def reference_ssim(x, y, size=11, sigma=1.5, k1=0.01, k2=0.03, data_range=1.0):
    """Wang et al. (2004) with explicit loops over every valid window position (numpy, float64)."""
    half = (size - 1) / 2
    g1 = np.array([math.exp(-((i - half) ** 2) / (2 * sigma**2)) for i in range(size)])
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    h, wd = x.shape
    values = []
    for r in range(h - size + 1):
        for c in range(wd - size + 1):
            a, b = x[r:r + size, c:c + size], y[r:r + size, c:c + size]
            mx, my = (w * a).sum(), (w * b).sum()
            vx, vy = (w * (a - mx) ** 2).sum(), (w * (b - my) ** 2).sum()
            cov = (w * (a - mx) * (b - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_equals_the_reference_on_fixed_images():
    rng = np.random.default_rng(3)
    truth = rng.random((3, 1, 16, 14))
    pred = np.clip(truth + 0.2 * rng.standard_normal(truth.shape), 0, 1)
    pred[2] = truth[2]  # identical frames: SSIM 1
    got = ssim(torch.from_numpy(pred), torch.from_numpy(truth))
    expected = [reference_ssim(pred[i, 0], truth[i, 0]) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-10)
    assert got[2].item() == pytest.approx(1.0, abs=1e-12) and got[0].item() < 0.99
    # channels are averaged
    two = torch.from_numpy(np.concatenate([pred[:1], pred[1:2]], axis=1))
    ref = torch.from_numpy(np.concatenate([truth[:1], truth[1:2]], axis=1))
    assert ssim(two, ref).item() == pytest.approx((expected[0] + expected[1]) / 2, abs=1e-10)


def test_ssim_needs_frames_at_least_as_large_as_the_window():
    with pytest.raises(ShapeError, match="11 x 11"):
        ssim(torch.zeros(1, 1, 10, 20), torch.zeros(1, 1, 10, 20))


def test_psnr_and_summed_error_by_hand():
    truth = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    pred = truth.clone()
    pred[0, 0, 0, 0] = 0.5  # one of 16 pixels off by 0.5: MSE = 0.25 / 16
    pred[1] = 0.1
    assert psnr(pred, truth)[0].item() == pytest.approx(10 * math.log10(16 / 0.25))
    assert psnr(pred, truth)[1].item() == pytest.approx(20.0)
    assert mse_sum(pred, truth).tolist() == pytest.approx([0.25, 16 * 0.01])
    assert psnr(truth, truth)[0].item() == pytest.approx(100.0)  # MSE floored at 1e-10


def test_best_of_n_picks_per_sequence_and_per_metric():
    truth = torch.full((2, 3, 1, 12, 12), 0.5, dtype=torch.float64)
    rng = torch.Generator().manual_seed(0)
    noise = torch.rand(3, 2, 3, 1, 12, 12, generator=rng, dtype=torch.float64) - 0.5
    scale = torch.tensor([[0.1, 0.9], [0.5, 0.05], [0.9, 0.5]], dtype=torch.float64)  # (N, B)
    samples = truth + scale[:, :, None, None, None, None] * noise
    assert best_of(torch.tensor([[1.0, 5.0], [2.0, 3.0]]), "max").tolist() == [1, 0]
    assert best_of(torch.tensor([[1.0, 5.0], [2.0, 3.0]]), "min").tolist() == [0, 1]
    scores = VideoScores(3)
    scores.add(samples, truth)
    out = scores.summary()
    for name, fn in (("psnr", psnr), ("ssim", ssim), ("mse_sum", mse_sum)):
        per = fn(samples, truth.expand_as(samples))  # (N, B, T)
        pick = per.mean(-1).argmax(0) if name != "mse_sum" else per.mean(-1).argmin(0)
        chosen = per[pick, torch.arange(2)]  # (B, T)
        assert out[f"{name}_best_mean"] == pytest.approx(chosen.mean(-1).mean().item())
        assert out[f"{name}_best_step_2"] == pytest.approx(chosen[:, 1].mean().item())
        assert out[f"{name}_random_mean"] == pytest.approx(per[0].mean().item())
        mean, half = mean_ci95(chosen.mean(-1))
        assert out[f"{name}_best_ci95"] == pytest.approx(half)
    assert out["psnr_best_mean"] > out["psnr_random_mean"] and out["mse_sum_best_mean"] < out["mse_sum_random_mean"]
    assert set(out) == set(metric_names(3))


def test_predictions_are_clipped_and_confidence_half_width():
    truth = torch.ones(1, 2, 1, 11, 11)
    scores = VideoScores(2)
    scores.add(truth.unsqueeze(0) + 5.0, truth)  # clipped to 1: perfect
    assert scores.summary()["mse_sum_best_mean"] == 0.0
    mean, half = mean_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5 and half == pytest.approx(1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)


def test_module_examples_run():
    result = doctest.testmod(video_metrics)
    assert result.attempted > 0 and result.failed == 0
