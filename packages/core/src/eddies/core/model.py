"""The model contract, written in :class:`Model`: what the engine and the tasks call on every
model kind."""

from __future__ import annotations

from torch import Tensor, nn

from eddies.core.errors import ShapeError
from eddies.core.task import DataSpec


class Model(nn.Module):
    """Base class of model kinds; ``kind`` is the registered name used in error messages.

    A model is built from its recipe spec with runtime argument ``data`` (the task's
    :class:`~eddies.core.task.DataSpec`). Training calls :meth:`Model.loss` on a batch (a dict of
    tensors) and minimises ``out["loss"]``; the other scalar entries are logged (a likelihood model
    reports ``nll``; the trainer calls the validation loss ``val_nll`` only then). Density models
    implement :meth:`log_prob` (per-sample, shape (batch,)).

    Generation uses the same argument names in every kind (the model kinds live in eddies-models):

    - ``batch``: the condition ``batch[data.condition]`` gives the number of rows ``B``, one draw
      per row. Unconditional data (``data.condition is None``) has ``B`` = the leading size of
      ``batch[data.target]`` when the batch holds the target (only its size is read, unless
      ``prefix`` asks for its first steps), and ``B = 1`` for an empty batch: ``sample({},
      samples=64)`` draws 64 unconditional samples of shape ``(64, 1, *target)``
      (:meth:`Model.rows`);
    - ``samples``: the number of draws. ``sample``: ``None`` gives one draw per row, shape
      ``(B, *target)``; an integer ``N >= 1`` gives ``(N, B, *target)``, draw ``n`` of row ``b`` at
      ``[n, b]``. ``predict``: how many draws its point estimate averages (``None``: the model's
      default, usually a config field);
    - ``temperature``: the prior's spread (standard deviation factor; 0: the mode). ``predict``'s
      ``None`` means the model's default;
    - ``prefix``: the number of leading target steps taken from ``batch[data.target]`` and
      continued (sequence kinds; the output starts with those steps);
    - ``horizon``: the number of steps generated after the prefix (sequence kinds; default: the
      rest of the target's ``T``, so the time axis has ``prefix + horizon`` steps).

    A kind that has no time axis refuses ``prefix`` and ``horizon`` with a ``ValueError`` naming
    itself (:meth:`Model.refuse_sequence_options`) instead of ignoring them.

    The trainer tells the model how far training has gone through :meth:`Model.set_progress`
    (called before every optimizer step, before every evaluation and after a resume), for
    schedules such as MotionRNN's scheduled sampling; :attr:`Model.progress` is then
    ``step / total_steps`` in ``[0, 1]``.

    A kind with a condition may declare an ``encoder`` slot (a ``conditioners`` spec built with
    ``in_shape`` = the condition's event shape): it runs once per condition and call, and its one
    output ``h`` is the context of every conditional layer (and of the prior when the prior is
    conditioned), so ``predict`` encodes once and then draws its samples.

    No silent loss of conditioning: a kind whose data has a condition that reaches no
    conditional layer and no prior raises a :class:`~eddies.core.errors.RecipeError` at build
    time naming the model key (``model.flow: conditional_flow: the condition 'x' reaches no
    layer ...``); an unconditional layer or prior given a context raises ``ShapeError``.
    """

    kind = "model"

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
        """Draws from the model given ``batch``'s condition: ``(B, *target)``, or
        ``(samples, B, *target)``; see the class docstring."""
        raise NotImplementedError

    def predict(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
        prefix: int | None = None, horizon: int | None = None,
    ) -> Tensor:
        """A point prediction ``(B, *target)``; see the class docstring."""
        raise NotImplementedError

    # helpers for kinds ---------------------------------------------------------------------
    def rows(self, batch: dict[str, Tensor]) -> int:
        """``B``, the number of rows a generation call draws for (see the class docstring)."""
        name = self.data.condition
        if name is not None:
            if name not in batch:
                raise ShapeError(f"{self.kind}: the batch has no condition {name!r} (keys: {sorted(batch)})")
            return int(batch[name].shape[0])
        target = batch.get(self.data.target)
        return 1 if target is None else int(target.shape[0])

    def check_samples(self, method: str, samples: int | None) -> int:
        """The number of draws ``samples`` stands for (``None``: 1), checked to be an int >= 1."""
        if samples is None:
            return 1
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"{self.kind}.{method}: samples must be an integer >= 1 or None, got {samples!r}")
        return samples

    def refuse_sequence_options(self, method: str, prefix: int | None, horizon: int | None) -> None:
        """A ``ValueError`` when ``prefix`` or ``horizon`` is given to a kind without a time axis."""
        given = [f"{k}={v!r}" for k, v in (("prefix", prefix), ("horizon", horizon)) if v is not None]
        if given:
            raise ValueError(
                f"{self.kind}.{method}: {', '.join(given)} given, but {self.kind} generates its whole "
                "target at once (prefix and horizon are for sequence kinds)"
            )
