"""CRPS-sum, the probabilistic score of multivariate forecasts, by its quantile-loss estimator.

Salinas et al., "High-dimensional multivariate forecasting with low-rank Gaussian copula
processes", NeurIPS 2019 (the metric), as GluonTS computes it and the MotionFlow comparison of
exchange rates reports it (MotionFlow: Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391,
motionflow.txt table 5; ../shared/protocols/motionflow_particles_exchange.md):
with ``s_t = Σ_i y_{t,i}`` the sum over the series of the truth and ``q_a`` the ``a``-quantile of
the forecast samples' sums at ``t``,

    QL_a = 2 Σ_t |(s_t - q_a) (1{s_t <= q_a} - a)|,     a in {0.05, 0.10, ..., 0.95},
    CRPS-sum = (1 / |A|) Σ_a QL_a / Σ_t |s_t|,

the sums over ``t`` running over every forecast day of every window (pooled). The quantiles are
the samples' empirical ones with linear interpolation (``torch.quantile``, NumPy's default, as
GluonTS's sample forecasts). For a point forecast every ``q_a`` is the point ``ŝ_t``, the mean
over the symmetric levels of ``1 - a`` (when ``s_t <= ŝ_t``) or ``a`` is 1/2, so CRPS-sum is the
normalised absolute error ``Σ_t |s_t - ŝ_t| / Σ_t |s_t|``.

Example::

    >>> import torch
    >>> truth = torch.tensor([[1.0, 2.0], [3.0, 4.0]])        # (T = 2, series = 2): sums 3, 7
    >>> point = torch.tensor([[[1.0, 1.0], [3.0, 3.0]]])      # one sample: sums 2, 6
    >>> round(crps_sum(point, truth), 6)                       # (|3 - 2| + |7 - 6|) / (3 + 7)
    0.2
"""

from __future__ import annotations

import torch
from torch import Tensor

LEVELS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, ..., 0.95


def quantile_losses(sample_sums: Tensor, truth_sums: Tensor, levels: tuple[float, ...] = LEVELS) -> Tensor:
    """``QL_a`` for each level (module docstring): ``sample_sums`` (N, ...) draws of the summed
    forecast, ``truth_sums`` (...) the summed truth; returns (len(levels),), summed over ``...``."""
    if tuple(sample_sums.shape[1:]) != tuple(truth_sums.shape):
        raise ValueError(f"quantile_losses: samples (N, ...) {tuple(sample_sums.shape)} do not match the truth "
                         f"{tuple(truth_sums.shape)}")
    a = torch.tensor(levels, dtype=torch.float64, device=sample_sums.device)
    q = torch.quantile(sample_sums.double(), a, dim=0)  # (levels, ...)
    s = truth_sums.double().expand_as(q)
    below = (s <= q).double()
    return 2 * ((s - q) * (below - a.reshape(-1, *[1] * truth_sums.dim()))).abs().flatten(1).sum(1)


def crps_sum(samples: Tensor, truth: Tensor, levels: tuple[float, ...] = LEVELS) -> float:
    """CRPS-sum of ``samples`` (N, ..., series) against ``truth`` (..., series) (module docstring);
    every axis but the samples' and the series' is pooled (windows, days)."""
    truth_sums = truth.double().sum(-1)
    return (quantile_losses(samples.double().sum(-1), truth_sums, levels).mean() / truth_sums.abs().sum()).item()
