"""Task ``synthetic_regression``: linear-Gaussian data drawn from a seed, for smoke tests.

``x ~ N(0, I_d)``, ``y = A x + b + noise * eps`` with ``eps ~ N(0, I_k)``; ``A``, ``b`` and every
split are drawn from the task's own ``seed``, in memory (nothing is downloaded or cached), so any
machine rebuilds identical data in milliseconds. Its metrics: ``test_nll`` (mean
``-log p(y | x)`` in nats), ``test_mse`` of ``model.predict`` (the conditional mean), and
``oracle_nll`` of the true conditional density, which a well-trained ``gaussian_regression``
model (eddies-models) approaches, since its family contains the truth. The engine's tests,
sweeps and examples use this pair because it trains to a known answer in a few steps.

Example::

    >>> from eddies.core import validate_spec
    >>> task = validate_spec({"type": "synthetic_regression", "n_train": 32}, "tasks").build(data_dir=None)
    >>> task.prepare(); sorted(task.dataset("train")[0])
    ['x', 'y']
    >>> model = validate_spec("gaussian_regression", "models").build(data=task.data_spec())
    >>> model.log_prob({k: v[None] for k, v in task.dataset("train")[0].items()}).shape
    torch.Size([1])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from eddies.core import ComponentConfig, DataError, DataSpec, Task, register
from eddies.core.task import check_options
from eddies.tasks.cache import SPLITS, check_split


class TensorDictDataset(Dataset):
    """Map-style dataset over equally long tensors: item ``i`` is ``{name: tensor[i]}``."""

    def __init__(self, tensors: dict[str, Tensor]):
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of unequal lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {k: t[index] for k, t in self.tensors.items()}


class SyntheticRegressionConfig(ComponentConfig):
    n_train: int = Field(256, ge=1)
    n_validation: int = Field(64, ge=1)
    n_test: int = Field(64, ge=1)
    x_dim: int = Field(4, ge=1)
    y_dim: int = Field(2, ge=1)
    noise: float = Field(0.5, gt=0)
    seed: int = 0


@register(
    "tasks", "synthetic_regression", version=1, config=SyntheticRegressionConfig,
    summary="Linear-Gaussian regression data drawn from a seed (engine smoke tests).",
)
class SyntheticRegression(Task):
    """``y = A x + b + noise * eps``; see the module docstring."""

    def __init__(self, n_train: int, n_validation: int, n_test: int, x_dim: int, y_dim: int,
                 noise: float, seed: int, data_dir: Path | str | None = None):
        super().__init__(data_dir)
        self.sizes = dict(zip(SPLITS, (n_train, n_validation, n_test), strict=True))
        self.x_dim, self.y_dim, self.noise, self.seed = x_dim, y_dim, noise, seed
        self._splits: dict[str, dict[str, Tensor]] = {}

    def prepare(self) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self.A = torch.randn(self.y_dim, self.x_dim, generator=g)
        self.b = torch.randn(self.y_dim, generator=g)
        for split, n in self.sizes.items():
            x = torch.randn(n, self.x_dim, generator=g)
            y = x @ self.A.T + self.b + self.noise * torch.randn(n, self.y_dim, generator=g)
            self._splits[split] = {"x": x, "y": y}

    def dataset(self, split: str) -> Dataset:
        check_split("synthetic_regression", split)
        if not self._splits:
            raise DataError("synthetic_regression: call prepare() before dataset()")
        return TensorDictDataset(self._splits[split])

    def data_spec(self) -> DataSpec:
        return DataSpec({"x": (self.x_dim,), "y": (self.y_dim,)})

    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """All three metrics of :meth:`evaluate` are minimised (``oracle_nll`` does not depend on the model)."""
        return {"test_nll": "min", "test_mse": "min", "oracle_nll": "min"}

    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        check_options("synthetic_regression.evaluate", options)
        nll = sq = oracle = 0.0
        count = 0
        oracle_scale = torch.full((self.y_dim,), self.noise)
        with torch.no_grad():
            for batch in loader:
                nll += float(-model.log_prob(batch).double().sum())
                sq += float((model.predict(batch) - batch["y"]).double().pow(2).mean(-1).sum())
                truth = torch.distributions.Normal(batch["x"] @ self.A.T + self.b, oracle_scale)
                oracle += float(-truth.log_prob(batch["y"]).double().sum())
                count += len(batch["y"])
        return {"test_nll": nll / count, "test_mse": sq / count, "oracle_nll": oracle / count}

    def save_samples(self, model: nn.Module, path: Path, n: int = 64, **options: Any) -> Path:
        """Scatter of the first two target coordinates: test targets against model samples."""
        from matplotlib.figure import Figure  # not at import: registry discovery loads this module

        batch = self._splits["test"]
        batch = {k: v[:n] for k, v in batch.items()}
        with torch.no_grad():
            samples = model.sample(batch, temperature=options.get("temperature", 1.0))
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        j = 1 if self.y_dim > 1 else 0
        ax.scatter(batch["y"][:, 0], batch["y"][:, j], s=8, label="data")
        ax.scatter(samples[:, 0], samples[:, j], s=8, label="model samples")
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
        return path
