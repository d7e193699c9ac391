"""Model kind ``gaussian_regression``: the exact linear-Gaussian baseline of the smoke tests.

``p(y | x) = N(W x + c, diag(sigma^2))`` with learned ``W``, ``c`` and ``log sigma``, so

    log p(y | x) = Σ_i [ -((y_i - μ_i) / σ_i)^2 / 2 - log σ_i - log(2π) / 2 ],   μ = W x + c.

The task ``synthetic_regression`` (eddies-tasks) draws its data from this family, so a fitted
model's NLL approaches the task's ``oracle_nll``; the engine's tests, sweeps and examples use the
pair because it trains to a known answer in a few steps. Runtime argument ``data``: a vector
condition ``(d,)`` and a vector target ``(k,)``.

Example::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> model = build("gaussian_regression", "models", data=DataSpec({"x": (4,), "y": (2,)}))
    >>> batch = {"x": torch.randn(3, 4), "y": torch.randn(3, 2)}
    >>> model.log_prob(batch).shape, model.sample(batch, samples=5).shape, model.predict(batch).shape
    (torch.Size([3]), torch.Size([5, 3, 2]), torch.Size([3, 2]))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from eddies.core.errors import RecipeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.task import DataSpec
from eddies.models.slots import checked_condition


@register(
    "models", "gaussian_regression", version=1, config=ComponentConfig,
    summary="p(y|x) = N(Wx + c, diag sigma^2): linear-Gaussian baseline (engine smoke tests).",
)
class GaussianRegression(Model):
    """Linear conditional Gaussian; exact ``log_prob`` (see the module docstring)."""

    kind = "gaussian_regression"

    def __init__(self, data: DataSpec):
        super().__init__(data)
        condition, target = data.condition_shape, tuple(data.target_shape)
        if condition is None or len(condition) != 1 or len(target) != 1:
            raise RecipeError(
                f"gaussian_regression needs a vector condition and a vector target, got condition "
                f"{data.condition!r} of shape {condition} and target {data.target!r} of shape {target}",
                "model",
            )
        (x_dim,), (y_dim,) = condition, target
        self.mean = nn.Linear(x_dim, y_dim)
        self.log_scale = nn.Parameter(torch.zeros(y_dim))

    def _mean(self, batch: dict[str, Tensor]) -> Tensor:
        return self.mean(checked_condition(self.kind, self.data, batch))

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        y, mean = batch[self.data.target], self._mean(batch)
        z = (y - mean) * torch.exp(-self.log_scale)
        return (-0.5 * z.pow(2) - self.log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """``μ + temperature · σ ⊙ ε``: ``(B, k)``, or ``(samples, B, k)``."""
        self.refuse_sequence_options("sample", prefix, horizon)
        n, mean = self.check_samples("sample", samples), self._mean(batch)
        shape = mean.shape if samples is None else (n, *mean.shape)
        return mean + temperature * torch.exp(self.log_scale) * torch.randn(shape, dtype=mean.dtype, device=mean.device)

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The conditional mean ``W x + c``, exact (``samples`` and ``temperature`` do not change it)."""
        self.refuse_sequence_options("predict", prefix, horizon)
        self.check_samples("predict", samples)
        return self._mean(batch)
