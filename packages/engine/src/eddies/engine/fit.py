"""The Python-first path: :func:`fit` a model spec on one's own data, :func:`load_model` it back.

::

    import torch
    from eddies.engine import fit, load_model

    x = torch.randn(2000, 3)
    y = x[:, :2] * 2.0 + 0.5 * torch.randn(2000, 2)
    run = fit("gaussian_regression", {"x": x, "y": y}, "runs/mine", epochs=5, batch_size=100,
              optimizer={"type": "adam", "lr": 0.05})
    model = load_model(run.run_dir)            # the task need not be installed to load it
    print(run.metrics["val_nll"], model.predict({"x": x[:4]}))

:func:`fit` assembles a recipe from its arguments and trains it with the
:class:`~eddies.engine.trainer.Trainer`, so the run directory, its checkpoints, curves and
resumption are those of ``apps/train.py`` (docs/training.md). ``data`` is one of

- tensors: ``{name: tensor}`` (one pool: the ``tensors`` task carves the validation split from
  it) or ``{split: {name: tensor}}`` (splits ``train``, ``validation``, ``test``); tensors or
  numpy arrays with a common first (sample) axis. They are written to
  ``<run_dir>/data/tensors.safetensors`` and the recipe's task is the ``tensors`` spec naming that
  file and its SHA-256 (``target`` / ``condition`` name the roles; see
  :mod:`eddies.tasks.user_data`);
- a task spec: a mapping with ``type`` (``{"type": "hf_dataset", "path": ..., "target": ...}``),
  a name, a :class:`~eddies.core.spec.Spec`, or a task built with :func:`eddies.core.build`.

``model`` is a model spec (mapping, name, ``Spec``) or a model built with ``build``; ``**train``
are ``train`` settings of the recipe (``epochs``, ``batch_size``, ``optimizer``, ...: see
:class:`~eddies.core.recipe.TrainConfig`), ``evaluate`` the recipe's ``eval`` options. The
whole recipe is validated before any data is written. The result holds the trained model (the
weights of the last step, in eval mode), its run directory, the final metrics and the best
checkpoint.

:func:`load_model` rebuilds a checkpoint's model from the model spec and the data spec that
``state.json`` records (:func:`~eddies.engine.checkpoint.data_spec_from_state`): only the
model's components must be registered, not its task. A checkpoint written before checkpoints
recorded the data spec still loads when its task is registered (the task is built, not
prepared only when its data spec comes from its data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eddies.core.errors import CheckpointError, DataError, EddiesError, RecipeError
from eddies.core.recipe import Recipe, validate_recipe
from eddies.core.spec import Spec, validate_spec
from eddies.core.task import DataSpec
from eddies.engine.checkpoint import check_components, data_spec_from_state, load_weights, read_checkpoint

_UNSET: Any = object()
DATA_FILE = Path("data") / "tensors.safetensors"  # where fit() writes tensors given in Python, in the run dir
MODEL_KINDS = ("models", "flows", "conditioners", "priors")  # the kinds a model is built from (load_model checks them)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model, where the run is, and how it ended."""

    model: nn.Module
    run_dir: Path
    metrics: dict[str, Any]
    recipe: Recipe
    best_checkpoint: Path | None


def _is_tensors(data: Any) -> bool:
    """A mapping of tensors/arrays (or of splits of them), not a task spec."""
    if not isinstance(data, Mapping) or "type" in data or not data:
        return False
    return all(isinstance(v, Mapping) or hasattr(v, "shape") for v in data.values())


def fit(
    model: Any,
    data: Any,
    run_dir: Path | str | None = None,
    *,
    target: str = "y",
    condition: str | None = _UNSET,
    seed: int = 0,
    name: str | None = None,
    evaluate: Mapping[str, Any] | None = None,
    resume: str | Path | None = None,
    callbacks: tuple[Any, ...] | list[Any] = (),
    data_dir: Path | str | None = None,
    **train: Any,
) -> FitResult:
    """Train ``model`` on ``data``; see the module docstring.

    ``target`` and ``condition`` (default ``"x"`` when the tensors hold one, else ``None``:
    unconditional) name the roles of tensors given in Python; with a task spec they are the
    task's business and must not be given. ``run_dir`` defaults to ``runs/<name or fit>/<UTC time>``;
    ``resume="auto"`` continues a run there. A mistake in the assembled recipe is one
    :class:`~eddies.core.errors.RecipeError` naming the key (``train.epochs``, ``model.flow...``).
    """
    from eddies.engine.trainer import Trainer

    if hasattr(data, "save_to_disk"):  # a datasets.Dataset or DatasetDict (its values have a .shape too)
        raise RecipeError(f"fit() got a {type(data).__name__} of the datasets library: save it with "
                          "save_to_disk(FOLDER) and pass {'type': 'hf_dataset', 'path': FOLDER, 'target': ..., "
                          "'condition': ...} (docs/python-api.md)", "task")
    run_dir = Path(run_dir) if run_dir is not None else (
        Path("runs") / (name or "fit") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    tensors = _is_tensors(data)
    if tensors:
        names = {name for key, value in data.items() for name in (value if isinstance(value, Mapping) else [key])}
        if condition is _UNSET:
            condition = "x" if "x" in names else None
        task: Any = {"type": "tensors", "file": str((run_dir / DATA_FILE).resolve()), "target": target,
                     "condition": condition}
    else:
        if target != "y" or condition is not _UNSET:
            raise RecipeError("target and condition name the roles of tensors given to fit(); a task spec "
                              "names them itself (e.g. {type: hf_dataset, target: ..., condition: ...})", "task")
        task = data
    tree = {"name": name or "fit", "seed": seed, "task": task, "model": model, "train": dict(train),
            "eval": dict(evaluate or {})}
    recipe = validate_recipe(tree)  # every key checked before anything is written
    if tensors:  # the registered task writes them (the engine does not import eddies-tasks)
        written = recipe.task.build(data_dir=data_dir, tensors=data)
        recipe = validate_recipe({**tree, "task": written.to_spec()})
    trainer = Trainer(recipe, run_dir, resume=resume, callbacks=callbacks, data_dir=data_dir)
    metrics = trainer.fit()
    return FitResult(trainer.model.eval(), trainer.run_dir, metrics, recipe, trainer.best_checkpoint)


def load_model(
    checkpoint: Path | str, map_location: str | torch.device = "cpu", allow_other_distribution: bool = False,
    data_dir: Path | str | None = None,
) -> nn.Module:
    """The model of a checkpoint (a folder, a ``latest``/``best`` pointer or a run directory), in eval mode.

    Built from the model spec and the data spec its ``state.json`` records, with the saved weights
    (strictly; files verified by their SHA-256). The model's components (:data:`MODEL_KINDS`) must be
    registered in the recorded versions (:func:`~eddies.engine.checkpoint.check_components`); its
    task and optimizer need not be,
    except for a checkpoint that records no data spec (older trainers): then the task is built
    (``data_dir``) for its ``data_spec()``, and prepared first when those shapes come from its data.
    """
    ckpt = read_checkpoint(checkpoint)
    state = ckpt.state
    recipe = state.get("recipe")
    if not isinstance(recipe, Mapping) or "model" not in recipe:
        raise CheckpointError(f"checkpoint {ckpt.path}: its state.json holds no recipe with a model")
    data = data_spec_from_state(state, ckpt.path)
    needed = MODEL_KINDS + (("tasks",) if data is None else ())  # a task only when it must give the data spec
    check_components({**state, "components": [c for c in state.get("components", []) if c.get("kind") in needed]},
                     ckpt.path, allow_other_distribution)
    source = str(ckpt.path / "state.json")
    try:
        spec = validate_spec(recipe["model"], "models", "model", source)
        if data is None:
            data = _task_data_spec(recipe, ckpt.path, source, data_dir)
        model = spec.build(data=data)
    except EddiesError as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {ckpt.path}: its model no longer builds: {err}") from None
    load_weights(model, ckpt)
    return model.to(map_location).eval()


def _task_data_spec(recipe: Mapping[str, Any], where: Path, source: str, data_dir: Path | str | None) -> DataSpec:
    """The data spec of a checkpoint that does not record one: its task's (built; prepared only if needed)."""
    spec: Spec = validate_spec(recipe.get("task"), "tasks", "task", source)
    try:
        task = spec.build(data_dir=data_dir)
        try:
            return task.data_spec()
        except DataError:  # its shapes come from its data (tensors, hf_dataset)
            task.prepare()
            return task.data_spec()
    except EddiesError as err:
        raise CheckpointError(
            f"checkpoint {where} records no data spec (written by an earlier eddies-engine) and its task "
            f"{spec.name!r} cannot give one: {err}") from None


__all__ = ["DATA_FILE", "MODEL_KINDS", "FitResult", "fit", "load_model"]
