"""Model kind ``gaussian_random_walk``: the probabilistic baseline of forecasting, a random walk
with Gaussian increments fitted on the training data.

The baseline of ../shared/protocols/motionflow_particles_exchange.md ("a Gaussian random walk
fitted on training increments (gives CRPS-sum)"), beside MotionFlow's exchange-rate comparison
(Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391, table 5). With ``s_n`` the last
known frame (the input's last, then the ``prefix`` first target frames) and independent
increments per element of the frame,

    y_k = y_{k-1} + δ_k,   δ_k ~ N(μ, σ²) elementwise,   y_0 = s_n,

so ``log p(y | x) = Σ_k Σ_i log N(y_{k,i} - y_{k-1,i}; μ_i, σ_i²)``. The parameters are ``μ``
(``drift``) and ``log σ`` (``log_scale``), one per frame element; maximising the likelihood
over the training windows (the trainer's loss is the mean NLL) gives the increments' mean and
population standard deviation, in the space the task serves (``exchange_rate``: the scaled
rates). Generation: :meth:`sample` draws ``y_k = s_n + Σ_{j<=k} (μ + τ σ ε_j)`` at temperature τ;
:meth:`predict` is the mean path ``s_n + k μ`` (exact, so ``samples`` changes nothing).

Example::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> model = build("gaussian_random_walk", "models", data=DataSpec({"x": (3, 2), "y": (4, 2)}))
    >>> batch = {"x": torch.zeros(5, 3, 2), "y": torch.randn(5, 4, 2)}
    >>> model.log_prob(batch).shape, model.sample(batch, samples=7).shape, model.predict(batch, horizon=6).shape
    (torch.Size([5]), torch.Size([7, 5, 4, 2]), torch.Size([5, 6, 2]))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from eddies.core.registry import ComponentConfig, register
from eddies.core.task import DataSpec
from eddies.models.motion_baselines import MotionBaseline
from eddies.models.slots import checked_condition, known_prefix, sequence_span


@register(
    "models", "gaussian_random_walk", version=1, config=ComponentConfig,
    summary="Forecasting baseline: a random walk with Gaussian increments (drift and scale per element) fitted by likelihood.",
)
class GaussianRandomWalk(MotionBaseline):
    """``y_k = y_{k-1} + δ_k``, ``δ_k ~ N(μ, σ²)`` elementwise (module docstring)."""

    kind = "gaussian_random_walk"

    def __init__(self, data: DataSpec):
        super().__init__(data)
        self.drift = nn.Parameter(torch.zeros(self.frame))
        self.log_scale = nn.Parameter(torch.zeros(self.frame))

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        """``Σ_k Σ_i log N(y_k - y_{k-1}; μ, σ²)`` per row, ``y_{-1}`` the last input frame."""
        x = checked_condition(self.kind, self.data, batch)
        y = known_prefix(self.kind, "log_prob", self.data, batch, x, self.steps)
        increments = torch.diff(torch.cat([x[:, -1:], y], 1), dim=1)
        z = (increments - self.drift) * torch.exp(-self.log_scale)
        per_element = -0.5 * z.pow(2) - self.log_scale - 0.5 * math.log(2 * math.pi)
        return per_element.flatten(1).sum(1)

    def _paths(self, batch: dict[str, Tensor], method: str, prefix: int | None, horizon: int | None,
               noise: Tensor | None) -> Tensor:
        x = checked_condition(self.kind, self.data, batch)
        prefix, horizon = sequence_span(self.kind, method, self.steps, prefix, horizon)
        known = known_prefix(self.kind, method, self.data, batch, x, prefix)
        last = torch.cat([x, known], 1)[:, -1:]
        steps = self.drift.expand(len(x), horizon, *self.frame)
        if noise is not None:
            steps = steps + noise * torch.exp(self.log_scale)
        return torch.cat([known, last + torch.cumsum(steps, 1)], 1)

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The mean path ``s_n + k μ``, ``(B, prefix + horizon, *frame)``."""
        self.check_samples("predict", samples)
        return self._paths(batch, "predict", prefix, horizon, None)

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """Paths with increments ``μ + τ σ ε``; ``samples=N`` gives ``(N, B, prefix + horizon, *frame)``."""
        n = self.check_samples("sample", samples)
        x = checked_condition(self.kind, self.data, batch)
        _, drawn = sequence_span(self.kind, "sample", self.steps, prefix, horizon)
        noise = float(temperature) * torch.randn(n * len(x), drawn, *self.frame, dtype=x.dtype, device=x.device)
        tiled = {k: torch.cat([v] * n) if isinstance(v, Tensor) else v for k, v in batch.items()}
        paths = self._paths(tiled, "sample", prefix, horizon, noise)
        return paths[: len(x)] if samples is None else paths.reshape(n, len(x), *paths.shape[1:])
