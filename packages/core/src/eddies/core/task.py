"""The task contract, written in :class:`Task`: data preparation, batch layout, metrics and the
prediction procedure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn
from torch.utils.data import Dataset

from eddies.core.errors import RecipeError


def default_data_dir() -> Path:
    """``$EDDIES_DATA`` or ``~/.cache/eddies``."""
    return Path(os.environ.get("EDDIES_DATA") or Path.home() / ".cache" / "eddies")


@dataclass(frozen=True)
class DataSpec:
    """What a batch holds: tensor name -> event shape (no batch axis), and their roles.

    ``target`` names the tensor a model predicts (``y``), ``condition`` the conditioning input
    (``x``, or ``None``). For sequences the target shape is ``(T, *step_shape)``.
    """

    shapes: dict[str, tuple[int, ...]]
    target: str = "y"
    condition: str | None = "x"

    @property
    def target_shape(self) -> tuple[int, ...]:
        return self.shapes[self.target]

    @property
    def condition_shape(self) -> tuple[int, ...] | None:
        return None if self.condition is None else self.shapes[self.condition]


class Task:
    """Base class of tasks (runtime argument ``data_dir``).

    A task is built from its recipe spec with runtime argument ``data_dir`` (the cache root,
    ``$EDDIES_DATA`` or ``~/.cache/eddies``). It converts its raw source once into a ``datasets``
    Arrow cache (:meth:`Task.prepare`, idempotent; :mod:`eddies.tasks.cache` holds the shared
    rules), serves splits as map-style torch datasets (:meth:`Task.dataset`), states the tensors
    a batch holds (:meth:`Task.data_spec`, read by models at build time), and turns a model into
    metrics (:meth:`Task.evaluate`) and pictures (:meth:`Task.save_samples`).

    Shape rules: item ``i`` of ``dataset(split)`` is a dict name -> tensor whose keys are those
    of ``data_spec().shapes`` and whose shapes are those event shapes (no batch axis; the loader
    stacks them into ``(batch, *shape)``); ``data_spec().target`` names what models predict
    (for sequences ``(T, *step_shape)``) and ``data_spec().condition`` the conditioning input
    (``None``: unconditional). The splits are ``train``, ``validation`` and ``test``; another name
    is a :class:`~eddies.core.errors.DataError` listing them.

    Metric rules: :meth:`metric_directions` declares each metric ``evaluate`` returns with its
    direction, ``"min"`` (lower is better, e.g. an NLL or bits per dimension) or ``"max"`` (e.g.
    IoU); ``evaluate`` returns plain floats (JSON-ready), a value for every declared name. The
    trainer logs them on the validation split as ``val_<name>`` every ``train.task_eval_every``
    evaluations and at the last one; ``train.monitor`` (best checkpoint, early stopping; its mode
    defaults to the declared direction) and sweeps (``metric: val_iou``, ``mode: max``) can select
    any of them.
    """

    def __init__(self, data_dir: Path | str | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()

    def prepare(self) -> None:
        """Convert the raw source into the Arrow cache once (idempotent, shows progress)."""
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        """A map-style dataset of dicts of tensors for ``split``."""
        raise NotImplementedError

    def data_spec(self) -> DataSpec:
        raise NotImplementedError

    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """The metrics :meth:`evaluate` returns, each with its direction (``"min"``: lower is
        better). The trainer logs them on the validation split as ``val_<name>``, so early
        stopping, the best checkpoint and sweeps can use any of them. Default: none."""
        return {}

    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        """The task's metrics of ``model`` over ``loader`` (labelled, JSON-ready floats)."""
        raise NotImplementedError

    def save_samples(self, model: nn.Module, path: Path, **options: Any) -> Path:
        """Write the task's sample picture (PNG) for ``model`` and return its path.

        The trainer calls it with no option (the task's default picture); ``apps/sample.py``
        passes ``n`` and, when given, ``temperature``: a float, or a list of floats for one
        labelled panel per temperature (``mnist_rows`` takes both; its default is 1.0 and 0.6).
        """
        raise NotImplementedError


def check_options(where: str, options: Mapping[str, Any], known: tuple[str, ...] = (), path: str = "eval") -> None:
    """Refuse the options a task method does not take: a RecipeError at ``path`` (``eval``, the
    recipe mapping ``evaluate``'s options come from) naming them and the ``known`` ones."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        known_text = f"known: {', '.join(known)}" if known else "it takes none"
        raise RecipeError(f"{where}: unknown options {unknown}; {known_text}", path)
