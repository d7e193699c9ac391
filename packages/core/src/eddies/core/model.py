"""The model contract: what the engine and the tasks call on every model kind.

A model is built from its recipe spec with runtime argument ``data`` (the task's
:class:`~eddies.core.task.DataSpec`). Training calls :meth:`Model.loss` on a batch (a dict of
tensors) and minimises ``out["loss"]``; the other scalar entries are logged (a likelihood model
reports ``nll``; the trainer calls the validation loss ``val_nll`` only then). Density models
implement :meth:`log_prob` (per-sample, shape (batch,)).

Generation uses the same argument names in every kind:

- ``samples``: the number of draws (``sample``: ``None`` gives one draw per row, shape
  ``(B, *target)``; an integer ``N`` gives ``(N, B, *target)``; ``predict``: how many draws
  its point estimate averages, ``None`` for the model's default);
- ``temperature``: the prior's spread (0: the mode);
- ``prefix``: the number of leading target steps taken from the batch and continued;
- ``horizon``: the number of steps to generate after the prefix (sequence kinds).

The trainer tells the model how far training has gone through :meth:`Model.set_progress`
(called before every optimizer step, and after a resume), for schedules such as MotionRNN's
scheduled sampling; :attr:`Model.progress` is then ``step / total_steps`` in ``[0, 1]``.
"""

from __future__ import annotations

from torch import Tensor, nn

from eddies.core.task import DataSpec


class Model(nn.Module):
    """Base class of model kinds."""

    def __init__(self, data: DataSpec):
        super().__init__()
        self.data = data
        self.trained_steps, self.total_steps = 0, None

    def set_progress(self, step: int, total_steps: int | None) -> None:
        """The training-progress hook: optimizer steps done so far, out of ``total_steps``."""
        self.trained_steps, self.total_steps = int(step), None if total_steps is None else int(total_steps)

    @property
    def progress(self) -> float:
        """Fraction of training done, ``trained_steps / total_steps`` (0 before training or when unknown)."""
        return min(1.0, self.trained_steps / self.total_steps) if self.total_steps else 0.0

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{"loss": scalar, ...}``; by default the mean negative log-likelihood."""
        nll = -self.log_prob(batch)
        return {"loss": nll.mean(), "nll": nll.detach().mean()}

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no tractable log_prob")

    def sample(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
        prefix: int | None = None, horizon: int | None = None,
    ) -> Tensor:
        """Draws from the model given ``batch``'s condition; see the module docstring."""
        raise NotImplementedError

    def predict(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
        prefix: int | None = None, horizon: int | None = None,
    ) -> Tensor:
        """A point prediction ``(B, *target)``; see the module docstring."""
        raise NotImplementedError
