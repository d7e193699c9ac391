"""The model contract: what the engine and the tasks call on every model kind.

A model is built from its recipe spec with runtime argument ``data`` (the task's
:class:`~eddies.core.task.DataSpec`). Training calls :meth:`Model.loss` on a batch (a dict of
tensors) and minimises ``out["loss"]``; the other scalar entries are logged. Density models
implement :meth:`log_prob` (per-sample, shape (batch,)); all implement :meth:`sample` and
:meth:`predict` (the task says which prediction procedure it wants through ``**options``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from eddies.core.task import DataSpec


class Model(nn.Module):
    """Base class of model kinds."""

    def __init__(self, data: DataSpec):
        super().__init__()
        self.data = data

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss": scalar, ...}``; by default the mean negative log-likelihood."""
        nll = -self.log_prob(batch)
        return {"loss": nll.mean(), "nll": nll.detach().mean()}

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no tractable log_prob")

    def sample(self, batch: dict[str, Tensor], temperature: float = 1.0, **options: Any) -> Tensor:
        raise NotImplementedError

    def predict(self, batch: dict[str, Tensor], **options: Any) -> Tensor:
        raise NotImplementedError
