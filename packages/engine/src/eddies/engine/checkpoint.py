"""Checkpoints: safetensors weights and training state plus JSON metadata, written atomically.

Layout of one checkpoint (``<run_dir>/checkpoints/step-000123/``)::

    model.safetensors       the model's state dict (parameters and buffers, unwrapped)
    optimizer.safetensors   tensors of the optimizer and scheduler states
    rng.safetensors         tensors of every rank's RNG states
    state.json              the validated recipe (versions pinned), the model's data spec
                            (``data_spec``: :func:`data_spec_to_dict`; absent from checkpoints of
                            earlier trainers), step/epoch, trainer counters,
                            the JSON skeletons of optimizer/scheduler/RNG states
                            (:mod:`eddies.engine.serialization`), every component's
                            kind/name@version/distribution/version, library versions, the
                            SHA-256 of the three safetensors files, and ``sha256``: the SHA-256
                            of its own other entries (:func:`state_digest`)

``<run_dir>/checkpoints/latest`` and ``best`` are one-line text files naming a checkpoint folder.

Atomicity (:mod:`eddies.core.files`): a checkpoint is written into a hidden temporary folder
(files fsynced), then renamed to its final name in one ``os.rename``; the pointer files are
replaced with ``os.replace``. A process killed at any moment leaves either the previous complete
checkpoint or the new complete one, never a half-written folder under a visible name; what a
kill leaves behind is hidden ``.tmp-*`` folders, which :func:`clean_leftovers` removes. Reading
checks the hashes (of the tensor files and of ``state.json`` itself), so a corrupted, truncated
or edited file is a :class:`~eddies.core.errors.CheckpointError` naming the file.

A checkpoint records where each component came from; loading it when a component is now
provided by another distribution (a plug-in overriding a first-party name) is a
``CheckpointError`` unless ``allow_other_distribution=True`` (:func:`check_components`).

Example::

    >>> from eddies.engine.checkpoint import load_checkpoint  # doctest: +SKIP
    >>> recipe, model, task, state = load_checkpoint("runs/demo/checkpoints/latest")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import re
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
from eddies.core.files import atomic_dir, atomic_write_bytes, remove_dir
from eddies.core.recipe import Recipe, validate_recipe
from eddies.core.registry import Entry, get_registry
from eddies.core.task import DataSpec, Task

FORMAT = 2  # 2: state.json carries its own SHA-256; format 1 (without it) is still read, with a warning
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


def data_spec_to_dict(spec: DataSpec) -> dict[str, Any]:
    """The JSON form of a :class:`~eddies.core.task.DataSpec` that ``state.json`` records:
    ``{"shapes": {name: [sizes]}, "target": name, "condition": name or null}``."""
    return {"shapes": {name: list(shape) for name, shape in spec.shapes.items()},
            "target": spec.target, "condition": spec.condition}


def data_spec_from_state(state: dict[str, Any], where: Path | str) -> DataSpec | None:
    """The data spec a checkpoint's ``state.json`` records, ``None`` for a checkpoint written
    before checkpoints recorded it; a malformed entry is a :class:`CheckpointError`."""
    found = state.get("data_spec")
    if found is None:
        return None
    try:
        shapes = {str(name): tuple(int(n) for n in shape) for name, shape in found["shapes"].items()}
        spec = DataSpec(shapes, target=str(found["target"]),
                        condition=None if found["condition"] is None else str(found["condition"]))
        spec.target_shape, spec.condition_shape  # noqa: B018 (the roles must name recorded tensors)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {where}: its data_spec is malformed ({type(err).__name__}: {err})") from None
    return spec


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
        meta = json.loads(json.dumps({"format": FORMAT, **state, "files": hashes}))  # as it will be read
        meta["sha256"] = state_digest(meta)
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    return final


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of ``state`` without its ``sha256`` entry, as canonical JSON (sorted keys, no spaces)."""
    body = {k: v for k, v in state.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_pointer(folder: Path, pointer: str, target: str) -> None:
    """Point ``folder/pointer`` (``latest`` or ``best``) at checkpoint ``target``, atomically."""
    atomic_write_bytes(folder / pointer, (target + "\n").encode())


def prune(folder: Path, keep: int, protect: tuple[str, ...] = ()) -> None:
    """Delete all but the ``keep`` newest checkpoints, never one a pointer or ``protect`` names.

    Each is renamed to a hidden ``.tmp-*`` name before it is deleted (a kill mid-deletion leaves
    no half-deleted checkpoint under a visible name).
    """
    protected = {read_pointer(folder, p) for p in POINTERS} | set(protect)
    steps = sorted(p for p in folder.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep)]:
        if old.name not in protected:
            remove_dir(old)


_LEFTOVER = re.compile(r"\.tmp-(step-\d+)-\d+-[0-9a-f]+")


def clean_leftovers(folder: Path) -> list[str]:
    """Remove what killed writes left in a checkpoints folder; return the names removed.

    Those are hidden ``.tmp-*`` entries: checkpoints being written, replaced or deleted
    (``.tmp-deleted-*``), pointers being replaced. One case is kept: when a ``.tmp-step-N-*``
    folder holds a complete, verified checkpoint and ``step-N`` is missing (a kill between the
    two renames that replace a checkpoint), it is renamed back to ``step-N``.
    """
    removed = []
    for leftover in sorted(folder.glob(".tmp-*")):
        match = _LEFTOVER.fullmatch(leftover.name)
        if match and leftover.is_dir() and not (folder / match[1]).exists():
            try:
                read_checkpoint(leftover)
            except CheckpointError:
                pass
            else:
                leftover.rename(folder / match[1])
                continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover.name)
    return removed


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
    if not isinstance(state, dict) or state.get("format") not in (1, FORMAT):
        raise CheckpointError(
            f"checkpoint {path}: state.json has format {state.get('format') if isinstance(state, dict) else None!r}, "
            f"this eddies-engine reads formats 1 and {FORMAT}"
        )
    if state["format"] == 1:
        warnings.warn(f"checkpoint {path} has format 1: its state.json carries no checksum, so edits "
                      "to it cannot be detected", RuntimeWarning, stacklevel=2)
    elif state.get("sha256") != state_digest(state):
        raise CheckpointError(
            f"checkpoint file {path / 'state.json'} is corrupted: its content does not match the SHA-256 "
            "it records (modified after it was written)")
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


def check_components(state: dict[str, Any], where: Path, allow_other_distribution: bool = False) -> None:
    """Every component the checkpoint names must be registered in the same version.

    A missing component or version is a :class:`CheckpointError` listing all of them. A
    component now provided by another distribution than the one recorded (a plug-in registered
    the name with ``override=True``) is a ``CheckpointError`` too, naming both, unless
    ``allow_other_distribution`` (then it warns). Another version of the same distribution only
    warns (same name@version promises the same parameters and behaviour).
    """
    problems, other, drift = [], [], []
    for item in state.get("components", []):
        ref = f"{item['kind']}/{item['name']}@{item['version']}"
        try:
            entry: Entry = get_registry(item["kind"]).get(f"{item['name']}@{item['version']}")
        except RegistryError as err:
            origin = f" (saved from {item.get('distribution')} {item.get('distribution_version')})"
            problems.append(f"{ref}{origin}: {err}")
            continue
        if entry.distribution != item.get("distribution"):
            other.append(f"{ref} was saved from {_origin(item.get('distribution'), item.get('distribution_version'))}, "
                         f"but is now provided by {_origin(entry.distribution, entry.distribution_version)}")
        elif entry.distribution_version != item.get("distribution_version"):
            drift.append(f"{ref} saved with {item.get('distribution')} {item.get('distribution_version')}, "
                         f"now {entry.distribution} {entry.distribution_version}")
    if problems:
        raise CheckpointError(  # one line, as the command line's one error line
            f"checkpoint {where} was built from components that are not available: "
            + "; ".join(problems)
            + ". Install the distributions recorded in its state.json (\"components\")"
        )
    if other and not allow_other_distribution:  # one line: the command line prints it as its one error
        raise CheckpointError(
            f"checkpoint {where} was built from components that another distribution now provides: "
            + "; ".join(other)
            + ". The model may not be the one that was trained; pass allow_other_distribution=True "
            "(allow_other_distribution=true on the command line) to load it anyway"
        )
    drift += other
    if drift:
        warnings.warn(f"checkpoint {where}: " + "; ".join(drift), RuntimeWarning, stacklevel=3)


def _origin(distribution: str | None, version: str | None) -> str:
    return f"{distribution} {version}" if distribution else "code outside any installed distribution"


def checkpoint_recipe(state: dict[str, Any], where: Path, allow_other_distribution: bool = False) -> Recipe:
    """The validated recipe stored in a checkpoint (its components checked first, :func:`check_components`)."""
    check_components(state, where, allow_other_distribution)
    try:
        return validate_recipe(state["recipe"], source=str(where / "state.json"))
    except (EddiesError, KeyError) as err:
        raise CheckpointError(f"checkpoint {where}: its recipe no longer validates: {err}") from None


def load_checkpoint(
    path: Path | str, data_dir: Path | str | None = None, map_location: str | torch.device = "cpu",
    allow_other_distribution: bool = False,
) -> tuple[Recipe, torch.nn.Module, Task, dict[str, Any]]:
    """Rebuild ``(recipe, model, task, state)`` from a checkpoint; the model is in eval mode.

    The task is built (with ``data_dir``) but not prepared; the model is built from the task's
    data spec and gets the saved weights (strictly: every key must match). A component now
    provided by another distribution is an error unless ``allow_other_distribution``.
    """
    ckpt = read_checkpoint(path)
    recipe = checkpoint_recipe(ckpt.state, ckpt.path, allow_other_distribution)
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
