"""CRPS-sum by the quantile-loss estimator (issue 13), against hand computations."""

import numpy as np
import pytest
import torch

from eddies.tasks.forecast_metrics import LEVELS, crps_sum, quantile_losses


def test_the_levels_are_the_19_of_the_protocol_page():
    assert LEVELS == pytest.approx([0.05 * i for i in range(1, 20)]) and len(LEVELS) == 19


def test_a_point_mass_scores_the_normalised_absolute_error():
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(5, 30, 8, generator=g, dtype=torch.float64) + 3
    point = truth + 0.1 * torch.randn(5, 30, 8, generator=g, dtype=torch.float64)
    expected = (truth.sum(-1) - point.sum(-1)).abs().sum() / truth.sum(-1).abs().sum()
    for copies in (1, 7):
        assert crps_sum(point.expand(copies, -1, -1, -1), truth) == pytest.approx(expected.item(), rel=1e-12)


def test_quantile_losses_by_hand():
    samples = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]], dtype=torch.float64)  # 5 draws of one sum
    truth = torch.tensor([4.5], dtype=torch.float64)
    losses = quantile_losses(samples, truth, levels=(0.1, 0.5, 0.9))
    # numpy's linear quantiles of 1..5: 1.4, 3.0, 4.6
    q = np.quantile([1, 2, 3, 4, 5], [0.1, 0.5, 0.9])
    expected = [2 * abs((4.5 - qa) * ((4.5 <= qa) - a)) for qa, a in zip(q, (0.1, 0.5, 0.9), strict=True)]
    np.testing.assert_allclose(losses.numpy(), expected)
    np.testing.assert_allclose(expected, [2 * 3.1 * 0.1, 2 * 1.5 * 0.5, 2 * 0.1 * 0.1])


def test_crps_sum_pools_windows_and_days_and_sums_the_series():
    g = torch.Generator().manual_seed(1)
    samples = torch.randn(50, 2, 3, 4, generator=g, dtype=torch.float64)
    truth = torch.randn(2, 3, 4, generator=g, dtype=torch.float64) + 1
    s, draws = truth.sum(-1).flatten(), samples.sum(-1).flatten(1).numpy()
    total = 0.0
    for a in LEVELS:
        q = np.quantile(draws, a, axis=0)
        total += 2 * np.abs((s.numpy() - q) * ((s.numpy() <= q) - a)).sum()
    assert crps_sum(samples, truth) == pytest.approx(total / len(LEVELS) / s.abs().sum().item(), rel=1e-10)
    with pytest.raises(ValueError, match="do not match"):
        quantile_losses(samples.sum(-1), truth.sum(-1)[0])
