"""Checkpoints: safetensors weights and training state plus JSON metadata, written atomically.

Layout of one checkpoint (``<run_dir>/checkpoints/step-000123/``)::

    model.safetensors       the model's state dict (parameters and buffers, unwrapped)
    optimizer.safetensors   tensors of the optimizer and scheduler states
    rng.safetensors         tensors of every rank's RNG states
    state.json              the validated recipe (versions pinned), step/epoch, trainer counters,
                            the JSON skeletons of optimizer/scheduler/RNG states
                            (:mod:`eddies.engine.serialization`), every component's
                            kind/name@version/distribution/version, library versions, and the
                            SHA-256 of the three safetensors files

``<run_dir>/checkpoints/latest`` and ``best`` are one-line text files naming a checkpoint folder.

Atomicity (:mod:`eddies.core.files`): a checkpoint is written into a hidden temporary folder
(files fsynced), then renamed to its final name in one ``os.rename``; the pointer files are
replaced with ``os.replace``. A process killed at any moment leaves either the previous complete
checkpoint or the new complete one, never a half-written folder under a visible name. Reading checks the hashes, so a corrupted
or truncated file is a :class:`~eddies.core.errors.CheckpointError` naming the file.

Example::

    >>> from eddies.engine.checkpoint import load_checkpoint  # doctest: +SKIP
    >>> recipe, model, task, state = load_checkpoint("runs/demo/checkpoints/latest")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from eddies.core.errors import CheckpointError, EddiesError, RegistryError
from eddies.core.files import atomic_dir, atomic_write_bytes
from eddies.core.recipe import Recipe, validate_recipe
from eddies.core.registry import Entry, get_registry
from eddies.core.task import Task

FORMAT = 1
FILES = ("model.safetensors", "optimizer.safetensors", "rng.safetensors")
POINTERS = ("latest", "best")
LIBRARIES = ("eddies-core", "eddies-flows", "eddies-conditioners", "eddies-priors", "eddies-tasks",
             "eddies-engine", "torch", "accelerate", "safetensors")


@dataclass
class Checkpoint:
    """A checkpoint read from disk: its folder, JSON state and the three tensor files."""

    path: Path
    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    rng: dict[str, torch.Tensor]


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def components(recipe: Recipe) -> list[dict[str, Any]]:
    """Provenance (kind, name, version, distribution, distribution_version) of every component."""
    specs = [recipe.task, recipe.model, recipe.train.optimizer]
    if recipe.train.scheduler is not None:
        specs.append(recipe.train.scheduler)
    seen: dict[tuple[str, str, int], dict[str, Any]] = {}
    for spec in specs:
        for entry in spec.entries():
            seen.setdefault((entry.kind, entry.name, entry.version), entry.provenance())
    return list(seen.values())


def library_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


# writing -----------------------------------------------------------------------------------
def save_checkpoint(
    folder: Path,
    name: str,
    model: dict[str, torch.Tensor],
    optimizer: dict[str, torch.Tensor],
    rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Write ``folder/name`` atomically (:func:`eddies.core.files.atomic_dir`; an existing one is replaced)."""
    final = folder / name
    with atomic_dir(final, replace=True) as tmp:
        hashes = {}
        for filename, tensors in zip(FILES, (model, optimizer, rng), strict=True):
            data = safetensors_save(
                {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": "pt"}
            )
            (tmp / filename).write_bytes(data)
            hashes[filename] = hashlib.sha256(data).hexdigest()
        meta = {"format": FORMAT, **state, "files": hashes}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    return final


def write_pointer(folder: Path, pointer: str, target: str) -> None:
    """Point ``folder/pointer`` (``latest`` or ``best``) at checkpoint ``target``, atomically."""
    atomic_write_bytes(folder / pointer, (target + "\n").encode())


def prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints, never one a pointer names."""
    protected = {read_pointer(folder, p) for p in POINTERS}
    steps = sorted(p for p in folder.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep)]:
        if old.name not in protected:
            shutil.rmtree(old, ignore_errors=True)


# reading -----------------------------------------------------------------------------------
def read_pointer(folder: Path, pointer: str) -> str | None:
    path = folder / pointer
    return path.read_text().strip() if path.is_file() else None


def find_checkpoint(path: Path | str) -> Path:
    """Resolve a checkpoint folder, a ``latest``/``best`` pointer, a ``checkpoints`` folder or a run dir."""
    path = Path(path)
    if path.is_file() and path.name in POINTERS:
        return path.parent / path.read_text().strip()
    if (path / "state.json").is_file():
        return path
    for folder in (path, path / "checkpoints"):
        target = read_pointer(folder, "latest")
        if target is not None:
            return folder / target
    raise CheckpointError(
        f"{path} is not a checkpoint: expected a folder holding state.json and "
        f"{', '.join(FILES)}, a 'latest' pointer, or a run directory with checkpoints/latest"
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``run_dir/checkpoints/latest`` names, or ``None`` when there is none."""
    target = read_pointer(run_dir / "checkpoints", "latest")
    return None if target is None else run_dir / "checkpoints" / target


def read_state(path: Path | str) -> tuple[Path, dict[str, Any]]:
    """The resolved checkpoint folder and its ``state.json`` (checked for format), tensors unread."""
    path = find_checkpoint(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no state.json (incomplete or not a checkpoint)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint {path}: state.json is corrupted ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path}: state.json has format {state.get('format') if isinstance(state, dict) else None!r}, "
            f"this eddies-engine reads format {FORMAT}"
        )
    return path, state


def read_checkpoint(path: Path | str) -> Checkpoint:
    """Read and verify a checkpoint; any missing, truncated or altered file is a CheckpointError."""
    path, state = read_state(path)
    tensors = []
    for filename in FILES:
        file = path / filename
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint {path} is missing {filename}") from None
        expected = state.get("files", {}).get(filename)
        if hashlib.sha256(data).hexdigest() != expected:
            raise CheckpointError(
                f"checkpoint file {file} is corrupted: its SHA-256 does not match the one recorded "
                "in state.json (truncated or modified after it was written)"
            )
        try:
            tensors.append(safetensors_load(data))
        except SafetensorError as err:
            raise CheckpointError(f"checkpoint file {file} cannot be read: {err}") from None
    return Checkpoint(path, state, *tensors)


def check_components(state: dict[str, Any], where: Path) -> None:
    """Every component the checkpoint names must be registered in the same version.

    A missing component or version is a :class:`CheckpointError` listing all of them; a
    component provided by another distribution version only warns (same name@version promises
    the same parameters and behaviour).
    """
    problems, drift = [], []
    for item in state.get("components", []):
        ref = f"{item['kind']}/{item['name']}@{item['version']}"
        try:
            entry: Entry = get_registry(item["kind"]).get(f"{item['name']}@{item['version']}")
        except RegistryError as err:
            origin = f" (saved from {item.get('distribution')} {item.get('distribution_version')})"
            problems.append(f"{ref}{origin}: {err}")
            continue
        if entry.distribution_version != item.get("distribution_version"):
            drift.append(f"{ref} saved with {item.get('distribution')} {item.get('distribution_version')}, "
                         f"now {entry.distribution} {entry.distribution_version}")
    if problems:
        raise CheckpointError(
            f"checkpoint {where} was built from components that are not available:\n  "
            + "\n  ".join(problems)
            + "\nInstall the distributions recorded in its state.json (\"components\")."
        )
    if drift:
        warnings.warn(f"checkpoint {where}: " + "; ".join(drift), RuntimeWarning, stacklevel=3)


def checkpoint_recipe(state: dict[str, Any], where: Path) -> Recipe:
    """The validated recipe stored in a checkpoint (its components checked first)."""
    check_components(state, where)
    try:
        return validate_recipe(state["recipe"], source=str(where / "state.json"))
    except (EddiesError, KeyError) as err:
        raise CheckpointError(f"checkpoint {where}: its recipe no longer validates: {err}") from None


def load_checkpoint(
    path: Path | str, data_dir: Path | str | None = None, map_location: str | torch.device = "cpu"
) -> tuple[Recipe, torch.nn.Module, Task, dict[str, Any]]:
    """Rebuild ``(recipe, model, task, state)`` from a checkpoint; the model is in eval mode.

    The task is built (with ``data_dir``) but not prepared; the model is built from the task's
    data spec and gets the saved weights (strictly: every key must match).
    """
    ckpt = read_checkpoint(path)
    recipe = checkpoint_recipe(ckpt.state, ckpt.path)
    task = recipe.task.build(data_dir=data_dir)
    model = recipe.model.build(data=task.data_spec())
    load_weights(model, ckpt)
    return recipe, model.to(map_location).eval(), task, ckpt.state


def load_weights(model: torch.nn.Module, ckpt: Checkpoint) -> None:
    """Load the checkpoint's weights into ``model`` strictly; a mismatch is a CheckpointError."""
    try:
        model.load_state_dict(ckpt.model, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {ckpt.path}: weights do not fit the model: {err}") from None
