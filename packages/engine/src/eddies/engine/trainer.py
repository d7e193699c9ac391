"""The trainer: any validated recipe, on one process or many (Accelerate), resumable bit for bit.

One optimizer step consumes one global batch of ``train.batch_size`` samples, cut into
``processes x grad_accum`` equal micro-batches (:mod:`eddies.engine.data`); each micro-batch's
mean loss is divided by ``grad_accum`` and DDP averages over processes, so the gradient is that
of the global batch's mean loss whatever the number of processes. Then, in order: the global
gradient norm is computed (and clipped to ``train.grad_clip``), the step's loss and the norm are
checked (reduced across processes, so every rank takes the same decision), the optimizer steps
(and the schedule, once per optimizer step) or the step is skipped and counted as non-finite;
``train.max_nonfinite`` skipped steps in a row stop the run with a
:class:`~eddies.core.errors.NonFiniteLossError` naming the step and the last good checkpoint.

Evaluation (each epoch, or every ``train.eval_every`` steps, and at the last step) computes
``val_<key>`` for every scalar of ``model.loss`` as a per-sample mean over the whole validation
split (sharded over processes, summed exactly); a likelihood model's loss reports ``nll``, so
only it has a ``val_nll``. Every ``train.task_eval_every`` evaluations, and at the last one,
the task's declared metrics (:meth:`~eddies.core.task.Task.metric_directions`) are added as
``val_<name>``: ``task.evaluate`` runs on rank 0 with the unwrapped model over the whole
validation split, under generators seeded from ``(seed, "task_metrics", step)`` and restored
afterwards (:func:`~eddies.engine.rng.forked_rng`), so they are reproducible, resume-exact and
leave the training streams untouched; the values are broadcast to every rank. One monitored
metric (``train.monitor``, default ``val_nll`` when present else ``val_loss``; its mode the
task's direction, else min) selects the ``best`` checkpoint and drives early stopping. Every
evaluation appends its record, writes a checkpoint, then calls the callbacks' ``on_evaluate``
(rank 0); ``curves.png`` is redrawn after an evaluation when the last drawing is older than
``PLOT_INTERVAL`` seconds, and at the end of the run. Rank 0 alone writes files. After every
optimizer step the callbacks' ``on_step`` runs (rank 0; :class:`Callback`). The records of
``steps.jsonl`` and ``evals.jsonl`` also go to the experiment trackers of ``train.log_with``
(:mod:`eddies.engine.tracking`), and the progress is a bar on a terminal, plain lines every
``train.progress_every`` seconds otherwise (:mod:`eddies.engine.progress`).

The model hears how far training has gone through ``model.set_progress(step, total_steps)``
(:class:`~eddies.core.model.Model`): before every optimizer step (``step`` = optimizer steps
done), before every evaluation, and after a resume.

Durability (docs/training.md, "After a crash"): rank 0 holds an exclusive lock on the run
directory (``.lock``) from the Trainer's construction to the end of :meth:`Trainer.fit`, so a
second run into it fails at once; leftovers of killed writes are removed at the start. An evaluation's record is
appended to ``evals.jsonl`` (and the metric files fsynced) *before* its checkpoint is written,
so every checkpoint's records are on disk. A checkpoint whose weights or metrics are not all
finite (its losses and the monitored metric; another task metric may be NaN) is never ``best``
nor the "last good checkpoint" errors name. Ctrl-C (SIGINT) lets the
current step finish, writes a checkpoint and raises
:class:`~eddies.core.errors.TrainingInterrupted` naming it; a second Ctrl-C stops at once. A
write into the run directory that fails (read-only, full, not a folder) is a
:class:`~eddies.core.errors.RunDirError` naming the path and the last good checkpoint.
Resuming may change most ``train`` settings (:data:`FIXED_ON_RESUME` names the keys it may
not change and says how the others take effect): optimizer and schedule settings are applied to
the restored optimizer and schedule.

Example::

    >>> from eddies.core import load_recipe            # doctest: +SKIP
    >>> result = Trainer(load_recipe("frmdn_mnist"), "runs/demo").fit()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import ProjectConfiguration, broadcast_object_list, gather_object
from torch import Tensor, nn

from eddies.core.errors import (
    CheckpointError,
    DataError,
    NonFiniteLossError,
    RecipeError,
    RunDirError,
    TrainingInterrupted,
    shorten,
)
from eddies.core.files import atomic_write_bytes, lock_holder, make_dir, try_lock, unlock
from eddies.core.recipe import Recipe, TrainConfig
from eddies.engine import tracking
from eddies.engine.checkpoint import (
    Checkpoint,
    check_components,
    checkpoint_name,
    clean_leftovers,
    components,
    data_spec_to_dict,
    find_checkpoint,
    latest_checkpoint,
    library_versions,
    load_weights,
    prune,
    read_checkpoint,
    read_pointer,
    save_checkpoint,
    write_pointer,
)
from eddies.engine.data import ShardBatchSampler, TrainBatchSampler, loader
from eddies.engine.metrics import MetricsLog, plot_curves
from eddies.engine.progress import Progress
from eddies.engine.rng import derive_seed, forked_rng, rng_state, seed_everything, set_rng_state
from eddies.engine.serialization import join_state, split_state

PLOT_INTERVAL = 30.0  # seconds between redrawings of curves.png during a run (always drawn at the end)
LOCK = ".lock"  # the run directory's lock file (held by rank 0 while a Trainer uses it)

FIXED_ON_RESUME = ("seed", "train.batch_size", "train.optimizer.type", "train.scheduler")
"""Recipe keys a resumed run may not change (besides ``task`` and ``model``): a change is a
CheckpointError naming them. ``train.scheduler`` here means adding or removing a schedule. Every
other ``train`` setting may change: the optimizer's settings (``lr``, ``betas``, ``weight_decay``,
...) are applied to every restored parameter group; when they, the schedule's type or settings,
or the run's length (``epochs``, ``max_steps``) change, the schedule is rebuilt from the recipe
and stepped as many times as the checkpoint's was, so the learning rate continues as the new
settings give it at that step; the others (evaluation, logging, checkpoint intervals, ...) take
effect from the resumed step on."""


class Callback(Protocol):
    """Hooks called on rank 0; a callback defines either or both (the other is not called).

    ``on_step`` after every optimizer step (``step`` = steps done; ``values`` the step's loss
    entries, averaged over micro-batches and processes, and ``grad_norm``, or ``None`` when the
    step was skipped as non-finite), before that step's evaluation if one is due; ``on_evaluate``
    after every evaluation, once that evaluation's checkpoint is on disk. Either may call
    :meth:`Trainer.request_stop`: the run then ends after the current (or next) evaluation.
    """

    def on_step(self, trainer: Trainer, step: int, values: dict[str, float] | None) -> None: ...

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``, so that DDP and autocast wrap the training objective."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.model.loss(batch)


def make_accelerator(cfg: TrainConfig, run_dir: Path | None = None) -> Accelerator:
    """An Accelerator on CUDA when present, else CPU, with the recipe's mixed precision and
    trackers (``train.log_with``, writing into ``run_dir``: :mod:`eddies.engine.tracking`).

    Accelerate keeps one process-wide state; in a single (non-launched) process a new recipe may
    ask for another precision, so that state is reset first (launched processes run one recipe).
    """
    kwargs = dict(
        cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)],
    )
    if cfg.log_with and run_dir is not None:
        kwargs.update(log_with=list(cfg.log_with), project_config=ProjectConfiguration(**tracking.project_config(run_dir)))
    try:
        return Accelerator(**kwargs)
    except ValueError:
        if PartialState().use_distributed:
            raise
        AcceleratorState._reset_state()
        return Accelerator(**kwargs)


def _scalars(out: dict[str, Any]) -> dict[str, Tensor]:
    return {k: v.detach().float() for k, v in out.items() if isinstance(v, Tensor) and v.dim() == 0}


class _OnDevice:
    """A loader whose batches are moved to the run's device (what ``task.evaluate`` iterates)."""

    def __init__(self, batches: Any, to_device: Any):
        self.batches, self.to_device = batches, to_device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return (self.to_device(batch) for batch in self.batches)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _changes(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` of every leaf where two JSON trees differ (dicts are descended)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(old.keys() | new.keys()):
            found += _changes(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return found
    return [] if old == new else [(prefix, old, new)]


def _listed(changes: list[tuple[str, Any, Any]], most: int = 10) -> str:
    """``key: old -> new; ...`` on one line (values as JSON, each shortened; at most ``most`` listed)."""
    text = "; ".join(f"{key}: {shorten(json.dumps(old), 200)} -> {shorten(json.dumps(new), 200)}"
                     for key, old, new in changes[:most])
    return text + (f"; and {len(changes) - most} more" if len(changes) > most else "")


def _finite(values: dict[str, Any], monitored: str) -> bool:
    """Whether the losses (``*loss``, ``*nll``) and the monitored metric among ``values`` are finite.
    Another task metric may be NaN without harm (a diverged 1 s forecast of one action, a
    protocol without windows): it is reported as it is, and does not disqualify the checkpoint."""
    return all(math.isfinite(v) for k, v in values.items() if isinstance(v, int | float)
               and (k == monitored or k.endswith(("loss", "nll"))))


class Trainer:
    """Train ``recipe`` into ``run_dir``; see docs/training.md for the API and the file layout."""

    def __init__(
        self,
        recipe: Recipe,
        run_dir: Path | str | None = None,
        resume: str | Path | None = None,
        callbacks: tuple[Callback, ...] | list[Callback] = (),
        data_dir: Path | str | None = None,
        allow_other_distribution: bool = False,
    ):
        """See docs/training.md; ``allow_other_distribution``: resume from a checkpoint whose
        components are now provided by another distribution (else a CheckpointError)."""
        self.recipe, self.cfg = recipe, recipe.train
        self.callbacks = tuple(callbacks)
        tracking.check_installed(self.cfg.log_with)
        if self.cfg.threads is not None:
            torch.set_num_threads(self.cfg.threads)
        self.run_dir = self._choose_run_dir(run_dir)
        self.accelerator = make_accelerator(self.cfg, self.run_dir)
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.is_main = self.accelerator.is_main_process
        self.last_good: Path | None = None  # newest checkpoint with finite weights and metrics
        self._lock: int | None = None
        self._progress: Progress | None = None  # while fit() trains
        self.checkpoints = self.run_dir / "checkpoints"
        try:
            self._claim_run_dir()
            self._setup(resume, data_dir, allow_other_distribution)
        except BaseException:
            self.close()
            raise

    def _claim_run_dir(self) -> None:
        """Rank 0 creates and locks the run directory and removes leftovers; every rank raises if that fails."""
        failure = None
        if self.is_main:
            try:
                self._make_run_dir()
                self._take_lock()
                with self._writing("the run directory"):
                    self._clean_leftovers()
            except RunDirError as err:
                failure = err
        message = broadcast_object_list([None if failure is None else str(failure)])[0]
        if failure is not None:
            raise failure
        if message is not None:
            raise RunDirError(message)

    def _setup(self, resume: str | Path | None, data_dir: Path | str | None, allow_other_distribution: bool) -> None:
        recipe = self.recipe
        resume_from = self._resume_path(resume)

        seed_everything(recipe.seed)
        self.task = recipe.task.build(data_dir=data_dir)
        with self.accelerator.main_process_first():
            self.task.prepare()
        self.spec = self.task.data_spec()
        self.train_set, self.val_set = self.task.dataset("train"), self.task.dataset("validation")
        self._check_sizes()
        self.task_metrics = {f"val_{name}": mode for name, mode in self.task.metric_directions().items()}
        self.model = recipe.model.build(data=self.spec).to(self.accelerator.device)
        optimizer = self.cfg.optimizer.build(params=self.model.parameters())
        self._fresh_groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        self.steps_per_epoch = len(self.train_set) // self.cfg.batch_size
        self.total_steps = self.cfg.epochs * self.steps_per_epoch
        if self.cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, self.cfg.max_steps)
        self.scheduler = (None if self.cfg.scheduler is None
                          else self.cfg.scheduler.build(optimizer=optimizer, total_steps=self.total_steps))

        self.step = 0
        self.nonfinite_run = self.nonfinite_total = 0
        self.best: dict[str, Any] | None = None
        self.bad_evals = 0
        self.last_metrics: dict[str, float] = {}
        self._since_log: dict[str, float] = {}
        self._since_eval: dict[str, float] = {}
        self._stop: str | None = None  # why the run ends early (early stopping, a callback)
        self._plotted = time.monotonic()
        self._saved_step: int | None = None  # step of the last checkpoint this process wrote
        self._interrupted = self._interrupt_seen = False  # Ctrl-C: here / on any rank (reduced)
        if resume_from is not None:
            self._restore(resume_from, optimizer, allow_other_distribution)
        else:
            keys = self._data_dependent_init()  # what evaluations will report, so a wrong metric fails now:
            self.monitor({"step", "epoch", "nonfinite_steps", "train_grad_norm",
                          *(f"{part}_{k}" for k in keys for part in ("val", "train"))})
            if self.rank > 0:
                seed_everything(derive_seed(recipe.seed, "rank", self.rank))
        loss_module: nn.Module = LossModule(self.model)
        if self.cfg.compile:
            loss_module = torch.compile(loss_module)
        self.loss_module, self.optimizer = self.accelerator.prepare(loss_module, optimizer)
        self.log = None
        if self.is_main:
            with self._writing("the metric files"):
                self.log = MetricsLog(self.run_dir)
                self.log.truncate(self.step)
            with self._writing("recipe.json"):
                atomic_write_bytes(self.run_dir / "recipe.json", json.dumps(
                    {"recipe": recipe.to_dict(), "components": components(recipe)}, indent=1).encode())
        if self.cfg.log_with:
            with self._writing("the trackers' files"):
                tracking.start(self.accelerator, recipe.name or "eddies", recipe.to_dict(), self.step)

    def close(self) -> None:
        """Close the trackers and release the run directory's lock (:meth:`fit` does so when it
        ends, however it ends)."""
        if hasattr(self, "accelerator"):
            tracking.finish(self.accelerator)
        if self._lock is not None:
            unlock(self._lock)
            self._lock = None

    # setup ---------------------------------------------------------------------------------
    def _choose_run_dir(self, run_dir: Path | str | None) -> Path:
        if run_dir is None:
            stamp = [datetime.now(UTC).strftime("%Y%m%d-%H%M%S")]
            broadcast_object_list(stamp)
            run_dir = Path("runs") / (self.recipe.name or "run") / stamp[0]
        return Path(run_dir)

    def _make_run_dir(self) -> None:
        existed = False
        try:
            existed = self.run_dir.is_dir()
            make_dir(self.run_dir)
        except NotADirectoryError as err:
            if err.filename == str(self.run_dir):
                raise RunDirError(f"run directory {self.run_dir} is a file, not a folder; choose another run_dir") from None
            what = "a file" if Path(err.filename).is_file() else "not a folder"
            raise RunDirError(f"cannot create the run directory {self.run_dir}: {err.filename} is {what}") from None
        except OSError as err:
            raise RunDirError(f"cannot {'use' if existed else 'create'} the run directory {self.run_dir}: "
                              f"{err.strerror or err}") from None

    def _take_lock(self) -> None:
        lock = self.run_dir / LOCK
        with self._writing(f"the lock file {lock}"):
            self._lock = try_lock(lock)
        if self._lock is None:
            holder = lock_holder(lock)
            raise RunDirError(f"run directory {self.run_dir} is in use by another run"
                              f"{f' ({holder})' if holder else ''}: wait until it ends, or choose another run_dir")

    def _clean_leftovers(self) -> None:
        """Remove the hidden temporary files and folders that killed writes left behind."""
        removed = clean_leftovers(self.checkpoints) if self.checkpoints.is_dir() else []
        for folder in (self.run_dir, self.run_dir / "metrics"):
            for leftover in folder.glob(".tmp-*") if folder.is_dir() else ():
                if leftover.is_file():
                    leftover.unlink()
        if removed:
            self.accelerator.print(f"removed leftovers of interrupted checkpoint writes: {', '.join(removed)}")

    @contextlib.contextmanager
    def _writing(self, what: str):
        """An OSError in the body (a failed write into the run directory) becomes a RunDirError
        naming ``what``, the path and the last good checkpoint."""
        try:
            yield
        except OSError as err:
            path = err.filename if err.filename is not None and str(err.filename) not in what else None
            latest = latest_checkpoint(self.run_dir) if self.last_good is None else None
            last = (f"last good checkpoint: {self.last_good}" if self.last_good is not None
                    else f"latest checkpoint: {latest}" if latest is not None else "no checkpoint written yet")
            raise RunDirError(f"cannot write {what}{f' ({path})' if path else ''}: {err.strerror or err}; {last}") from err

    def _resume_path(self, resume: str | Path | None) -> Path | None:
        if resume is None:
            if latest_checkpoint(self.run_dir) is not None:
                raise CheckpointError(
                    f"run directory {self.run_dir} already holds checkpoints: pass resume=auto to continue "
                    "that run, or choose another run_dir")
            return None
        if str(resume) == "auto":
            return latest_checkpoint(self.run_dir)
        return find_checkpoint(resume)  # fails now, before the data is prepared

    def _check_sizes(self) -> None:
        parts = self.world * self.cfg.grad_accum
        if self.cfg.batch_size % parts:
            raise RecipeError(
                f"{self.cfg.batch_size} is not divisible by processes x grad_accum = {self.world} x "
                f"{self.cfg.grad_accum}: every process must get equal micro-batches", "train.batch_size")
        if len(self.train_set) < self.cfg.batch_size:
            raise DataError(
                f"the train split of task {self.recipe.task.name!r} has {len(self.train_set)} samples, "
                f"fewer than train.batch_size={self.cfg.batch_size}")
        if len(self.val_set) < self.world:
            raise DataError(
                f"the validation split of task {self.recipe.task.name!r} has {len(self.val_set)} "
                f"samples, fewer than the {self.world} processes")

    def _data_dependent_init(self) -> list[str]:
        """One forward pass without gradient on the run's first micro-batch, identical on every rank.

        Layers that initialise from data on their first call (ActNorm) thus start from the same
        values on every process before DDP starts averaging gradients. Returns the names of the
        loss's scalar entries.
        """
        sampler = TrainBatchSampler(len(self.train_set), self.cfg.batch_size, self.recipe.seed, 0,
                                    world=self.world, grad_accum=self.cfg.grad_accum)
        first = next(iter(loader(self.train_set, sampler)))
        with torch.no_grad(), self.accelerator.autocast():
            self.model.train()
            return sorted(_scalars(self.model.loss(self._to_device(first))))

    def _to_device(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.to(self.accelerator.device, non_blocking=True) for k, v in batch.items()}

    # checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the current step (all ranks must call it; rank 0 writes).

        It is "good" when its weights and this step's losses and monitored metric (if evaluated)
        are finite: only then may ``best`` name it, and it becomes :attr:`last_good`.
        """
        states = gather_object([rng_state()])
        path = self.checkpoints / checkpoint_name(self.step)
        self._saved_step = self.step
        if self.is_main:
            good = self._weights_finite() and (self.last_metrics.get("step") != self.step
                                               or _finite(self.last_metrics, self.monitor(self.last_metrics)[0]))
            opt_tree, opt_tensors = split_state(
                {"optimizer": self.optimizer.state_dict(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}, "optimizer")
            rng_tree, rng_tensors = split_state(states, "rng")
            state = {
                "recipe": self.recipe.to_dict(),
                "data_spec": data_spec_to_dict(self.spec),
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "step_in_epoch": self.step % self.steps_per_epoch,
                "total_steps": self.total_steps,
                "processes": self.world,
                "trainer": self._counters(path if good else self.last_good),
                "optimizer": opt_tree,
                "rng": rng_tree,
                "components": components(self.recipe),
                "versions": library_versions(),
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
                "good": good,
            }
            with self._writing(f"checkpoint {path}"):
                self.log.sync()  # the records up to this step are on disk before the checkpoint is
                save_checkpoint(self.checkpoints, path.name, self.model.state_dict(), opt_tensors, rng_tensors,
                                state)
                write_pointer(self.checkpoints, "latest", path.name)
                if good and self.best is not None and self.best["step"] == self.step:
                    write_pointer(self.checkpoints, "best", path.name)
                if good:
                    self.last_good = path
                prune(self.checkpoints, self.cfg.keep_checkpoints,
                      protect=() if self.last_good is None else (self.last_good.name,))
        self.accelerator.wait_for_everyone()
        return path

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point())

    def _counters(self, last_good: Path | None) -> dict[str, Any]:
        return {"nonfinite_run": self.nonfinite_run, "nonfinite_total": self.nonfinite_total,
                "best": self.best, "bad_evals": self.bad_evals, "last_metrics": self.last_metrics,
                "since_log": self._since_log, "since_eval": self._since_eval,
                "last_good": None if last_good is None else last_good.name}

    def _restore(self, path: Path, optimizer: torch.optim.Optimizer, allow_other_distribution: bool) -> None:
        ckpt = read_checkpoint(path)
        check_components(ckpt.state, ckpt.path, allow_other_distribution)
        changes = self._resumable_changes(ckpt)
        load_weights(self.model, ckpt)
        self._restore_optimizer(ckpt, optimizer, {key for key, _, _ in changes})
        self.step = ckpt.state["step"]
        self._set_progress()
        counters = ckpt.state["trainer"]
        self.nonfinite_run, self.nonfinite_total = counters["nonfinite_run"], counters["nonfinite_total"]
        self.best, self.bad_evals = counters["best"], counters["bad_evals"]
        self.last_metrics = counters["last_metrics"]
        self._since_log, self._since_eval = counters["since_log"], counters["since_eval"]
        if counters.get("last_good") and (self.checkpoints / counters["last_good"]).is_dir():
            self.last_good = self.checkpoints / counters["last_good"]
        if self.is_main and ckpt.path.parent == self.checkpoints:
            self._finish_cut_short(ckpt.path)
        states = join_state(ckpt.state["rng"], ckpt.rng)
        if self.rank < len(states) and len(states) == self.world:
            set_rng_state(states[self.rank])
        else:
            warnings.warn(f"checkpoint {ckpt.path} was written by {len(states)} processes, this run has "
                          f"{self.world}: random streams are reseeded, so the run will not repeat "
                          "the original one exactly", RuntimeWarning, stacklevel=3)
            seed_everything(derive_seed(self.recipe.seed, "resume", self.step, self.rank))
        self.accelerator.print(f"resumed from {ckpt.path} at step {self.step}"
                               + (f" with changed settings: {_listed(changes)}" if changes else ""))

    def _resumable_changes(self, ckpt: Checkpoint) -> list[tuple[str, Any, Any]]:
        """The ``seed``/``train`` settings that differ from the checkpoint's recipe (dotted key, old,
        new); a CheckpointError when ``task``, ``model`` or a :data:`FIXED_ON_RESUME` key differs."""
        saved, mine = ckpt.state["recipe"], self.recipe.to_dict()
        for part in ("task", "model"):
            if differ := _changes(saved.get(part), mine[part], part):
                raise CheckpointError(
                    f"cannot resume from {ckpt.path}: the recipe's {part} differs from the checkpoint's "
                    f"(checkpoint -> recipe): {_listed(differ)}")
        changes = [c for c in _changes(saved, mine) if c[0].partition(".")[0] in ("seed", "train")]
        if fixed := [c for c in changes if c[0] in FIXED_ON_RESUME]:
            raise CheckpointError(
                f"cannot resume from {ckpt.path}: these settings cannot change within a run: {_listed(fixed)}. "
                "Keep the checkpoint's values, or start a new run in another run_dir")
        return changes

    def _restore_optimizer(self, ckpt: Checkpoint, optimizer: torch.optim.Optimizer, changed: set[str]) -> None:
        """The checkpoint's optimizer and schedule, with the recipe's changed settings applied
        (:data:`FIXED_ON_RESUME` says how); unchanged settings restore them as they were."""
        training = join_state(ckpt.state["optimizer"], ckpt.optimizer)
        optimizer.load_state_dict(training["optimizer"])
        if any(key.startswith("train.optimizer.") for key in changed):
            for group, fresh in zip(optimizer.param_groups, self._fresh_groups, strict=True):
                group.update(fresh)  # the recipe's lr, betas, weight decay, ...
        if self.scheduler is None:
            return
        if (any(key.startswith(("train.optimizer.", "train.scheduler.")) for key in changed)
                or ckpt.state["total_steps"] != self.total_steps):
            stepped = ckpt.state["step"] - ckpt.state["trainer"]["nonfinite_total"]  # if it has no last_epoch
            self._replay_schedule(optimizer, training["scheduler"].get("last_epoch", stepped))
        else:
            self.scheduler.load_state_dict(training["scheduler"])

    def _finish_cut_short(self, resumed: Path) -> None:
        """Rank 0, resuming in its own run directory: finish what a kill may have cut short."""
        best = None if self.best is None else checkpoint_name(self.best["step"])
        with self._writing(f"the checkpoints folder {self.checkpoints}"):
            if best and read_pointer(self.checkpoints, "best") != best and (self.checkpoints / best).is_dir():
                write_pointer(self.checkpoints, "best", best)  # killed between 'latest' and 'best'
            prune(self.checkpoints, self.cfg.keep_checkpoints,  # killed before pruning
                  protect=(resumed.name, *(() if self.last_good is None else (self.last_good.name,))))

    def _replay_schedule(self, optimizer: torch.optim.Optimizer, steps: int) -> None:
        """Rebuild the schedule from the recipe on the recipe's lr and step it ``steps`` times."""
        for group, fresh in zip(optimizer.param_groups, self._fresh_groups, strict=True):
            group["lr"] = fresh["lr"]
            group.pop("initial_lr", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "lr_scheduler.step() called before optimizer.step()"
            self.scheduler = self.cfg.scheduler.build(optimizer=optimizer, total_steps=self.total_steps)
            for _ in range(steps):
                self.scheduler.step()

    # training ------------------------------------------------------------------------------
    def request_stop(self, reason: str = "requested by a callback") -> None:
        """End the run after the current evaluation (its checkpoint is already written), or after
        the next one when called between evaluations (``on_step``): every process stops there."""
        self._stop = reason

    def fit(self) -> dict[str, Any]:
        """Train until ``train.epochs``/``train.max_steps`` or early stopping; return final metrics.

        Ctrl-C (SIGINT, when called from the main thread) finishes the current step, writes a
        checkpoint and raises :class:`TrainingInterrupted` naming it; a second Ctrl-C raises
        ``KeyboardInterrupt`` at once. The run directory's lock is released when ``fit`` ends.
        """
        try:
            with self._saving_on_sigint():
                self._train()
            return self._finish()
        finally:
            self.close()

    @contextlib.contextmanager
    def _saving_on_sigint(self):
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
            yield  # signals reach the main thread only; an ignored SIGINT stays ignored
            return

        def interrupted(signum: int, frame: Any) -> None:
            self._interrupted = True
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C stops at once
            if self.is_main:
                print(f"\ninterrupted: finishing step {self.step + 1}, then writing a checkpoint "
                      "(Ctrl-C again to stop at once, without one)", file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, interrupted)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _train(self) -> None:
        self._progress = Progress(self.total_steps, self.step, self.cfg.progress_every, enabled=self.is_main,
                                  bar=sys.stderr.isatty() and not _truthy("TQDM_DISABLE"))
        try:
            self._steps()
        finally:
            self._progress.close()
            self._progress = None

    def _steps(self) -> None:
        busy, seen = 0.0, 0  # seconds spent loading and stepping, and samples, since the last log
        self.loss_module.train()
        done = self.step >= self.total_steps
        while not done:
            epoch, start = divmod(self.step, self.steps_per_epoch)
            sampler = TrainBatchSampler(
                len(self.train_set), self.cfg.batch_size, self.recipe.seed, epoch, start,
                self.world, self.rank, self.cfg.grad_accum)
            if hasattr(self.train_set, "set_epoch"):  # per-epoch data (e.g. fresh dequantisation)
                self.train_set.set_epoch(epoch)
            batches = iter(loader(self.train_set, sampler, self.cfg.num_workers))
            for _ in range(start, self.steps_per_epoch):
                tick = time.perf_counter()
                values = self._train_step([next(batches) for _ in range(self.cfg.grad_accum)])
                busy += time.perf_counter() - tick
                self.step += 1
                seen += self.cfg.batch_size
                rate = seen / max(busy, 1e-9)
                self._progress.update(self.step, None if values is None else values["loss"], rate)
                if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
                    self._write_log(rate)
                    busy, seen = 0.0, 0
                if self.is_main:
                    for callback in self.callbacks:
                        if hasattr(callback, "on_step"):
                            callback.on_step(self, self.step, values)
                done = self._boundary()
                if done:
                    break
                if self._interrupt_seen:
                    raise self._interruption()

    def _interruption(self) -> TrainingInterrupted:
        """Write a checkpoint of this step (unless one was just written); the error to raise."""
        path = self.checkpoints / checkpoint_name(self.step)
        try:
            if self._saved_step != self.step:
                path = self.save_checkpoint()
        except RunDirError as err:
            return TrainingInterrupted(f"training interrupted at step {self.step} of {self.total_steps}; "
                                       f"no checkpoint written: {err}")
        return TrainingInterrupted(
            f"training interrupted at step {self.step} of {self.total_steps}; checkpoint written: {path} "
            f"(continue with resume=auto and run_dir={self.run_dir})", path)

    def _finish(self) -> dict[str, Any]:
        if self.is_main:
            with self._writing("curves.png"):
                plot_curves(self.run_dir)
        if self.cfg.samples and self.is_main:
            with self._writing("samples.png"):
                picture = self.write_samples(self.run_dir / "samples.png")
                tracking.log_picture(self.accelerator, picture, self.step)
        result = {**self.last_metrics, "step": self.step, "epoch": self.step / self.steps_per_epoch,
                  "nonfinite_steps": self.nonfinite_total, "stopped": self._stop or "completed",
                  **({f"best_{self.best['metric']}": self.best["value"], "best_step": self.best["step"]}
                     if self.best else {})}
        if self.is_main:
            with self._writing("result.json"):
                atomic_write_bytes(self.run_dir / "result.json", (json.dumps(result, indent=1) + "\n").encode())
        self.accelerator.wait_for_everyone()
        return result

    def _boundary(self) -> bool:
        """Evaluate/checkpoint when due; True when the run must end."""
        end = self.step >= self.total_steps
        evaluate = end or (self.step % self.cfg.eval_every == 0 if self.cfg.eval_every
                           else self.step % self.steps_per_epoch == 0)
        checkpoint = evaluate or (self.cfg.checkpoint_every is not None
                                  and self.step % self.cfg.checkpoint_every == 0)
        if evaluate:
            index = self.step // (self.cfg.eval_every or self.steps_per_epoch)  # evaluations so far
            every = self.cfg.task_eval_every
            metrics = self.evaluate(task_metrics=end or (every is not None and index % every == 0))
            self._stop = broadcast_object_list([self._stop])[0]  # an on_step callback's request (rank 0)
            self._track(metrics)
            if self._stop is not None and not self.task_metrics.keys() <= metrics.keys():
                metrics.update(self.evaluate_task())  # early stopping made this the last evaluation
                self.last_metrics = metrics
        if evaluate and self.is_main:  # before the checkpoint, which thus implies the record
            with self._writing("metrics/evals.jsonl"):
                self.log.append("evals", metrics)
                self.accelerator.log(tracking.eval_values(metrics), step=self.step)
        if checkpoint:
            path = self.save_checkpoint()
        if evaluate:
            if self.is_main:
                for callback in self.callbacks:
                    if hasattr(callback, "on_evaluate"):
                        callback.on_evaluate(self, metrics, path)
                if time.monotonic() - self._plotted >= PLOT_INTERVAL:
                    with self._writing("curves.png"):
                        plot_curves(self.run_dir)
                    self._plotted = time.monotonic()
                self._say(f"step {self.step} epoch {metrics['epoch']:.2f}: "
                          + " ".join(f"{k}={v:.5g}" for k, v in metrics.items() if k.startswith("val_")))
            self._stop = broadcast_object_list([self._stop])[0]  # every rank ends at the same evaluation
            return end or self._stop is not None
        return end

    def _say(self, line: str) -> None:
        """One of the trainer's lines on stdout (rank 0), above the progress bar when there is one."""
        if self._progress is not None:
            self._progress.write(line)
        else:
            self.accelerator.print(line)

    def _set_progress(self) -> None:
        """``model.set_progress(optimizer steps done, total steps)`` on the unwrapped model."""
        self.model.set_progress(self.step, self.total_steps)

    def _train_step(self, micro: list[dict[str, Tensor]]) -> dict[str, float] | None:
        """One optimizer step over ``grad_accum`` micro-batches; None when skipped as non-finite."""
        self._set_progress()
        sums: dict[str, Tensor] = {}
        for m, batch in enumerate(micro):
            sync = m == len(micro) - 1
            with contextlib.nullcontext() if sync else self.accelerator.no_sync(self.loss_module):
                out = self.loss_module(self._to_device(batch))
                self.accelerator.backward(out["loss"] / len(micro))
            for k, v in _scalars(out).items():
                sums[k] = sums.get(k, 0) + v / len(micro)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else math.inf
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
        keys = sorted(sums)
        flag = torch.tensor(float(self._interrupted), device=sums["loss"].device)  # Ctrl-C on any rank
        *reduced, interrupted = self.accelerator.reduce(torch.stack([*(sums[k] for k in keys), flag]), "mean").tolist()
        values = dict(zip(keys, reduced, strict=True))
        self._interrupt_seen = interrupted > 0
        loss_ok, grad_ok = math.isfinite(values["loss"]), bool(torch.isfinite(grad_norm))
        if self.accelerator.scaler is not None:  # fp16: the loss scaler skips overflowing steps itself
            self.optimizer.step()
            stepped, bad = not self.accelerator.optimizer_step_was_skipped, not loss_ok
        else:
            bad = not (loss_ok and grad_ok)
            if not bad:
                self.optimizer.step()
            stepped = not bad
        self.optimizer.zero_grad(set_to_none=True)
        if stepped and self.scheduler is not None:
            self.scheduler.step()
        if bad:
            self._nonfinite("loss" if not loss_ok else "gradient norm")
            return None
        self.nonfinite_run = 0
        values["grad_norm"] = float(grad_norm)
        for acc in (self._since_log, self._since_eval):
            for k, v in values.items():
                acc[k] = acc.get(k, 0.0) + v
            acc["n"] = acc.get("n", 0) + 1
        return values

    def _nonfinite(self, what: str) -> None:
        self.nonfinite_run += 1
        self.nonfinite_total += 1
        step = self.step + 1
        if self.nonfinite_run >= self.cfg.max_nonfinite:
            last = self.last_good
            raise NonFiniteLossError(
                f"training stopped at step {step}: non-finite {what} in {self.nonfinite_run} steps in a "
                f"row (train.max_nonfinite={self.cfg.max_nonfinite}); last good checkpoint: "
                f"{last if last is not None else 'none written yet'}")
        self._say(f"step {step}: non-finite {what}, step skipped "
                  f"({self.nonfinite_run} in a row, {self.nonfinite_total} in total)")

    def _write_log(self, samples_per_s: float) -> None:
        acc, self._since_log = self._since_log, {}
        if not self.is_main:
            return
        n = acc.pop("n", 0)
        record = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                  **{k: v / n for k, v in acc.items()},
                  "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": samples_per_s,
                  "nonfinite": self.nonfinite_total}
        with self._writing("metrics/steps.jsonl"):
            self.log.append("steps", record)
            self.accelerator.log(tracking.step_values(record), step=self.step)

    # evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, task_metrics: bool = True) -> dict[str, float]:
        """Validation metrics (per-sample means over the whole split, all processes) and train means.

        ``task_metrics``: also the task's declared metrics (:meth:`evaluate_task`). All ranks call it.
        """
        self._set_progress()
        module = self.accelerator.unwrap_model(self.loss_module)
        module.eval()
        sums: dict[str, Tensor] = {}
        count = 0
        batch_size = self.cfg.eval_batch_size or self.cfg.batch_size
        sampler = ShardBatchSampler(len(self.val_set), batch_size, self.world, self.rank)
        for batch in loader(self.val_set, sampler, self.cfg.num_workers):
            n = len(batch[self.spec.target])
            with self.accelerator.autocast():
                out = _scalars(module(self._to_device(batch)))
            for k, v in out.items():
                sums[k] = sums.get(k, 0) + v.double() * n
            count += n
        keys = sorted(sums)
        totals = self.accelerator.reduce(
            torch.stack([torch.tensor(float(count), dtype=torch.float64, device=self.accelerator.device),
                         *(sums[k] for k in keys)]), "sum").tolist()
        module.train()
        metrics = {"step": self.step, "epoch": self.step / self.steps_per_epoch}
        metrics.update({f"val_{k}": v / totals[0] for k, v in zip(keys, totals[1:], strict=True)})
        if task_metrics:
            clash = sorted(self.task_metrics.keys() & metrics.keys())
            if clash:
                raise RecipeError(f"task {self.recipe.task.name!r} declares metrics whose names {clash} are "
                                  "also entries of the model's loss; rename the task's metrics", "task")
            metrics.update(self.evaluate_task())
        acc, self._since_eval = self._since_eval, {}
        n = acc.pop("n", 0)
        metrics.update({f"train_{k}": v / n for k, v in acc.items()} if n else {})
        metrics["nonfinite_steps"] = self.nonfinite_total
        self.last_metrics = metrics
        return metrics

    def evaluate_task(self) -> dict[str, float]:
        """``val_<name>`` for each metric the task declares, on the whole validation split.

        Rank 0 runs ``task.evaluate(model, loader, **recipe.eval)`` with the unwrapped model
        (under autocast and without gradient) and broadcasts the values, so every task metric is
        exact without the task knowing about processes; the other ranks wait. The generators are
        seeded from ``(seed, "task_metrics", step)`` and restored afterwards. All ranks call it.
        """
        if not self.task_metrics:
            return {}
        values, failure = None, None
        if self.is_main:
            try:
                values = self._task_metrics()
            except Exception as err:  # tell the other ranks before raising, so that none waits forever
                failure = err
        values, failed = broadcast_object_list([values, None if failure is None else repr(failure)])
        if failure is not None:
            raise failure
        if failed is not None:
            raise RuntimeError(f"rank 0 failed to compute the task metrics: {failed}")
        return values

    def _task_metrics(self) -> dict[str, float]:
        batch_size = self.cfg.eval_batch_size or self.cfg.batch_size
        batches = _OnDevice(loader(self.val_set, ShardBatchSampler(len(self.val_set), batch_size),
                                   self.cfg.num_workers), self._to_device)
        self.model.eval()
        try:
            with forked_rng(derive_seed(self.recipe.seed, "task_metrics", self.step)), torch.no_grad(), \
                    self.accelerator.autocast():
                values = self.task.evaluate(self.model, batches, **self.recipe.eval)
        finally:
            self.model.train()
        names = {key.removeprefix("val_") for key in self.task_metrics}
        missing = sorted(names - values.keys())
        if missing:
            raise RecipeError(f"task {self.recipe.task.name!r} declares the metrics {sorted(names)} but its "
                              f"evaluate() returned {sorted(values)} (missing {missing})", "task")
        return {f"val_{name}": float(values[name]) for name in sorted(names)}

    def monitor(self, available: set[str] | dict[str, Any]) -> tuple[str, str, str]:
        """``(metric, mode, recipe key)`` of the monitored metric, given the metrics an evaluation has.

        The metric is ``train.monitor.metric`` (or ``train.early_stopping.metric``), else
        ``val_nll`` when the model reports an ``nll``, else ``val_loss``; the mode is the
        recipe's, else the task's declared direction, else ``min``. A metric that no evaluation
        computes (neither in ``available`` nor a declared task metric) is a :class:`RecipeError`.
        """
        rule = self.cfg.early_stopping
        if self.cfg.monitor.metric is not None:
            metric, key = self.cfg.monitor.metric, "train.monitor.metric"
        elif rule is not None and rule.metric is not None:
            metric, key = rule.metric, "train.early_stopping.metric"
        else:
            metric, key = ("val_nll" if "val_nll" in available else "val_loss"), "train.monitor.metric"
        known = set(available) | self.task_metrics.keys()
        if metric not in known:
            raise RecipeError(f"metric {metric!r} is not computed; evaluation gives {', '.join(sorted(known))}", key)
        mode = self.cfg.monitor.mode or (rule.mode if rule else None) or self.task_metrics.get(metric, "min")
        return metric, mode, key

    def _track(self, metrics: dict[str, float]) -> None:
        """Best value of the monitored metric and the early-stopping patience.

        An evaluation without the metric (a task metric not due this time) changes nothing. An
        evaluation with a non-finite monitored metric or loss, or of non-finite weights, never
        becomes the best: it counts as one without improvement.
        """
        key, mode, _ = self.monitor(metrics)
        if key not in metrics:
            return
        rule = self.cfg.early_stopping
        delta = rule.min_delta if rule else 0.0
        if self.best is not None and (self.best["metric"], self.best.get("mode", mode)) != (key, mode):
            self.best, self.bad_evals = None, 0  # resumed with another monitor
        value = metrics[key]
        sign = 1.0 if mode == "min" else -1.0
        if _finite(metrics, key) and (self.best is None or sign * (self.best["value"] - value) > delta) \
                and self._weights_finite():
            self.best = {"metric": key, "mode": mode, "value": value, "step": self.step}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if rule and self.bad_evals >= rule.patience:
                best = (f"best {self.best['value']:.6g} at step {self.best['step']}" if self.best
                        else "no finite value yet")
                self._stop = (f"early stopping: {key} did not improve by {delta} for {rule.patience} "
                              f"evaluations ({best})")

    # pictures ------------------------------------------------------------------------------
    def write_samples(self, path: Path) -> Path:
        """The task's sample picture of the current model (``task.save_samples``)."""
        self.model.eval()
        with torch.no_grad():
            out = self.task.save_samples(self.model, path)
        self.model.train()
        return out

    @property
    def best_checkpoint(self) -> Path | None:
        target = read_pointer(self.checkpoints, "best")
        return None if target is None else self.checkpoints / target
