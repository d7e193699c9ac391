"""Experiment trackers (``train.log_with``) through Accelerate's tracking API, beside the JSONL files.

``train.log_with: [tensorboard]`` (or ``wandb``, ``mlflow``, when installed) makes the Trainer build
its ``Accelerator(log_with=..., project_config=...)`` with the run directory as project directory
and call, on rank 0 (Accelerate's tracking calls run there only):

- ``init_trackers(project, config=hyperparameters(recipe))`` when training starts: the project is
  the recipe's name (``eddies`` without one; W&B's project, MLflow's experiment, TensorBoard's
  subfolder of ``<run_dir>/tensorboard``), the config the validated recipe flattened to dotted
  keys (:func:`hyperparameters`); a resumed run passes TensorBoard ``purge_step`` = the resumed
  step + 1, so the events a killed run wrote after its checkpoint are hidden, as the JSONL
  records after it are dropped;
- ``log(step_values(record), step)`` with every ``metrics/steps.jsonl`` record (``train/loss``,
  ``train/lr``, ``train/grad_norm``, ``train/samples_per_s``, ... : the same numbers) and
  ``log(eval_values(metrics), step)`` with every ``metrics/evals.jsonl`` record (``eval/val_loss``,
  ``eval/val_<task metric>``, ``eval/train_loss``, ...);
- the task's sample picture (``samples.png``, ``train.samples``) as the TensorBoard image
  ``samples`` at the last step (:func:`log_picture`);
- at the end of :meth:`~eddies.engine.trainer.Trainer.fit`, however it ends, every tracker's
  ``finish()``: what ``Accelerator.end_training`` does besides destroying the process group,
  which the Trainer leaves to its caller (a sweep trial or a test keeps using the processes).

A tracker whose package is not installed is a :class:`~eddies.core.errors.RecipeError` at
``train.log_with`` when the Trainer is built (:func:`check_installed`; Accelerate itself would
drop it silently); an unknown name already fails when the recipe is validated.

Example::

    >>> hyperparameters({"seed": 0, "train": {"optimizer": {"type": "adam@1", "lr": 0.05}, "log_with": []}})
    {'seed': 0, 'train.optimizer.type': 'adam@1', 'train.optimizer.lr': 0.05, 'train.log_with': '[]'}
    >>> step_values({"step": 3, "epoch": 0.5, "loss": 1.25, "lr": 0.05})
    {'train/epoch': 0.5, 'train/loss': 1.25, 'train/lr': 0.05}
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import Accelerator

from eddies.core.errors import RecipeError

PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}
"""The importable packages of each tracker (any one of them is enough); the keys are
:data:`eddies.core.recipe.TRACKERS`."""
INSTALL = {"tensorboard": "'eddies-engine[tensorboard]'"}  # what installs a tracker, when not its package name
TENSORBOARD_DIR = "tensorboard"  # <run_dir>/tensorboard/<project>/: TensorBoard's event files
IMAGE_TAG = "samples"  # the TensorBoard image of the task's sample picture


def check_installed(names: Sequence[str]) -> None:
    """A :class:`RecipeError` at ``train.log_with`` naming every tracker whose package is missing."""
    missing = [name for name in names if not any(importlib.util.find_spec(p) for p in PACKAGES[name])]
    if missing:
        how = ", ".join(f"{name} (.venv/bin/pip install {INSTALL.get(name, PACKAGES[name][0])})" for name in missing)
        raise RecipeError(f"tracker(s) not installed: {how}; or remove them from train.log_with", "train.log_with")


def project_config(run_dir: Path) -> dict[str, str]:
    """Accelerate's ``ProjectConfiguration`` arguments: the run directory, TensorBoard's folder in it."""
    return {"project_dir": str(run_dir), "logging_dir": str(run_dir / TENSORBOARD_DIR)}


def hyperparameters(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A recipe tree flattened to ``{dotted key: bool | int | float | str | None}``.

    Mappings are descended (``train.optimizer.lr``), lists of mappings by index
    (``model.flow.layers.0.type``); any other list is one JSON string (``"[64]"``), so every value
    has a type every tracker takes.
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(hyperparameters(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            flat.update(hyperparameters({str(i): v for i, v in enumerate(value)}, name))
        elif isinstance(value, list | tuple | Mapping):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def step_values(record: Mapping[str, Any]) -> dict[str, float]:
    """A ``steps.jsonl`` record as tracker values ``train/<key>`` (its ``step`` is the tracker's step)."""
    return {f"train/{k}": v for k, v in record.items() if k != "step"}


def eval_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """An ``evals.jsonl`` record as tracker values ``eval/<key>`` (its ``step`` is the tracker's step)."""
    return {f"eval/{k}": v for k, v in metrics.items() if k != "step"}


def start(accelerator: Accelerator, project: str, recipe: Mapping[str, Any], step: int) -> None:
    """``init_trackers`` with the flattened recipe; resuming at ``step``, TensorBoard hides the
    events after it (the JSONL files keep the records up to ``step`` too)."""
    accelerator.init_trackers(project, config=hyperparameters(recipe),
                              init_kwargs={"tensorboard": {"purge_step": step + 1}} if step else None)


def log_picture(accelerator: Accelerator, path: Path, step: int) -> None:
    """The picture at ``path`` (a PNG the task wrote) as TensorBoard's image :data:`IMAGE_TAG`."""
    if not accelerator.is_main_process or not any(t.name == "tensorboard" for t in accelerator.trackers):
        return
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(path))
    pixels = pixels[..., :3] if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=-1)  # RGB
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
    accelerator.get_tracker("tensorboard").log_images({IMAGE_TAG: pixels[None]}, step=step, dataformats="NHWC")


def finish(accelerator: Accelerator) -> None:
    """Close every tracker (flushing its files), keeping the process group."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()
