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
evaluation writes a checkpoint, then calls the callbacks (rank 0); ``curves.png`` is redrawn
after an evaluation when the last drawing is older than ``PLOT_INTERVAL`` seconds, and at the
end of the run. Rank 0 alone writes files.

The model hears how far training has gone through ``model.set_progress(step, total_steps)``
(:class:`~eddies.core.model.Model`): before every optimizer step (``step`` = optimizer steps
done), before every evaluation, and after a resume.

Example::

    >>> from eddies.core import load_recipe            # doctest: +SKIP
    >>> result = Trainer(load_recipe("frmdn_mnist"), "runs/demo").fit()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import broadcast_object_list, gather_object
from torch import Tensor, nn
from tqdm.auto import tqdm

from eddies.core.errors import CheckpointError, DataError, NonFiniteLossError, RecipeError
from eddies.core.recipe import Recipe, TrainConfig
from eddies.engine.checkpoint import (
    check_components,
    checkpoint_name,
    components,
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
from eddies.engine.rng import derive_seed, forked_rng, rng_state, seed_everything, set_rng_state
from eddies.engine.serialization import join_state, split_state

PLOT_INTERVAL = 30.0  # seconds between redrawings of curves.png during a run (always drawn at the end)


class Callback(Protocol):
    """Called on rank 0 after every evaluation, once that evaluation's checkpoint is on disk."""

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


class LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``, so that DDP and autocast wrap the training objective."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.model.loss(batch)


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """An Accelerator on CUDA when present, else CPU, with the recipe's mixed precision.

    Accelerate keeps one process-wide state; in a single (non-launched) process a new recipe may
    ask for another precision, so that state is reset first (launched processes run one recipe).
    """
    kwargs = dict(
        cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)],
    )
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


class Trainer:
    """Train ``recipe`` into ``run_dir``; see docs/training.md for the API and the file layout."""

    def __init__(
        self,
        recipe: Recipe,
        run_dir: Path | str | None = None,
        resume: str | Path | None = None,
        callbacks: tuple[Callback, ...] | list[Callback] = (),
        data_dir: Path | str | None = None,
    ):
        self.recipe, self.cfg = recipe, recipe.train
        self.callbacks = tuple(callbacks)
        if self.cfg.threads is not None:
            torch.set_num_threads(self.cfg.threads)
        self.accelerator = make_accelerator(self.cfg)
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.is_main = self.accelerator.is_main_process
        self.run_dir = self._choose_run_dir(run_dir)
        self.checkpoints = self.run_dir / "checkpoints"
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
        self._stop: str | None = None
        self._plotted = time.monotonic()
        if resume_from is not None:
            self._restore(resume_from, optimizer)
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
        self.log = MetricsLog(self.run_dir) if self.is_main else None
        if self.is_main:
            self.log.truncate(self.step)
            (self.run_dir / "recipe.json").write_text(json.dumps(
                {"recipe": recipe.to_dict(), "components": components(recipe)}, indent=1))

    # setup ---------------------------------------------------------------------------------
    def _choose_run_dir(self, run_dir: Path | str | None) -> Path:
        if run_dir is None:
            stamp = [datetime.now(UTC).strftime("%Y%m%d-%H%M%S")]
            broadcast_object_list(stamp)
            run_dir = Path("runs") / (self.recipe.name or "run") / stamp[0]
        run_dir = Path(run_dir)
        if self.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

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
        """Write a checkpoint of the current step (all ranks must call it; rank 0 writes)."""
        states = gather_object([rng_state()])
        path = self.checkpoints / checkpoint_name(self.step)
        if self.is_main:
            opt_tree, opt_tensors = split_state(
                {"optimizer": self.optimizer.state_dict(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict()}, "optimizer")
            rng_tree, rng_tensors = split_state(states, "rng")
            state = {
                "recipe": self.recipe.to_dict(),
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "step_in_epoch": self.step % self.steps_per_epoch,
                "total_steps": self.total_steps,
                "processes": self.world,
                "trainer": self._counters(),
                "optimizer": opt_tree,
                "rng": rng_tree,
                "components": components(self.recipe),
                "versions": library_versions(),
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            save_checkpoint(self.checkpoints, path.name, self.model.state_dict(), opt_tensors, rng_tensors, state)
            write_pointer(self.checkpoints, "latest", path.name)
            if self.best is not None and self.best["step"] == self.step:
                write_pointer(self.checkpoints, "best", path.name)
            prune(self.checkpoints, self.cfg.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path

    def _counters(self) -> dict[str, Any]:
        return {"nonfinite_run": self.nonfinite_run, "nonfinite_total": self.nonfinite_total,
                "best": self.best, "bad_evals": self.bad_evals, "last_metrics": self.last_metrics,
                "since_log": self._since_log, "since_eval": self._since_eval}

    def _restore(self, path: Path, optimizer: torch.optim.Optimizer) -> None:
        ckpt = read_checkpoint(path)
        check_components(ckpt.state, ckpt.path)
        saved, mine = ckpt.state["recipe"], self.recipe.to_dict()
        for part in ("task", "model"):
            if saved.get(part) != mine[part]:
                raise CheckpointError(
                    f"cannot resume from {ckpt.path}: the recipe's {part} differs from the "
                    f"checkpoint's\n  checkpoint: {json.dumps(saved.get(part))}\n  recipe:     {json.dumps(mine[part])}")
        load_weights(self.model, ckpt)
        training = join_state(ckpt.state["optimizer"], ckpt.optimizer)
        optimizer.load_state_dict(training["optimizer"])
        if self.scheduler is not None and training["scheduler"] is not None:
            self.scheduler.load_state_dict(training["scheduler"])
        self.step = ckpt.state["step"]
        self._set_progress()
        counters = ckpt.state["trainer"]
        self.nonfinite_run, self.nonfinite_total = counters["nonfinite_run"], counters["nonfinite_total"]
        self.best, self.bad_evals = counters["best"], counters["bad_evals"]
        self.last_metrics = counters["last_metrics"]
        self._since_log, self._since_eval = counters["since_log"], counters["since_eval"]
        states = join_state(ckpt.state["rng"], ckpt.rng)
        if self.rank < len(states) and len(states) == self.world:
            set_rng_state(states[self.rank])
        else:
            warnings.warn(f"checkpoint {ckpt.path} was written by {len(states)} processes, this run has "
                          f"{self.world}: random streams are reseeded, so the run will not repeat "
                          "the original one exactly", RuntimeWarning, stacklevel=3)
            seed_everything(derive_seed(self.recipe.seed, "resume", self.step, self.rank))
        self.accelerator.print(f"resumed from {ckpt.path} at step {self.step}")

    # training ------------------------------------------------------------------------------
    def request_stop(self, reason: str = "requested by a callback") -> None:
        """End the run after the current evaluation (its checkpoint is already written)."""
        self._stop = reason

    def fit(self) -> dict[str, Any]:
        """Train until ``train.epochs``/``train.max_steps`` or early stopping; return final metrics."""
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not self.is_main or not sys.stderr.isatty() or _truthy("TQDM_DISABLE"))
        busy, seen = 0.0, 0  # seconds spent loading and stepping, and samples, since the last log
        self.loss_module.train()
        while self.step < self.total_steps and self._stop is None:
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
                bar.update(1)
                if values is not None:
                    bar.set_postfix(loss=f"{values['loss']:.4g}", img_s=f"{seen / max(busy, 1e-9):.0f}")
                if self.step % self.cfg.log_every == 0 or self.step == self.total_steps:
                    self._write_log(seen / max(busy, 1e-9))
                    busy, seen = 0.0, 0
                if self._boundary():
                    break
        bar.close()
        if self.is_main:
            plot_curves(self.run_dir)
        if self.cfg.samples and self.is_main:
            self.write_samples(self.run_dir / "samples.png")
        result = {**self.last_metrics, "step": self.step, "epoch": self.step / self.steps_per_epoch,
                  "nonfinite_steps": self.nonfinite_total, "stopped": self._stop or "completed",
                  **({f"best_{self.best['metric']}": self.best["value"], "best_step": self.best["step"]}
                     if self.best else {})}
        if self.is_main:
            (self.run_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
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
            self._track(metrics)
            if self._stop is not None and not self.task_metrics.keys() <= metrics.keys():
                metrics.update(self.evaluate_task())  # early stopping made this the last evaluation
                self.last_metrics = metrics
        if checkpoint:
            path = self.save_checkpoint()
        if evaluate:
            if self.is_main:
                self.log.append("evals", metrics)
                for callback in self.callbacks:
                    callback.on_evaluate(self, metrics, path)
                if time.monotonic() - self._plotted >= PLOT_INTERVAL:
                    plot_curves(self.run_dir)
                    self._plotted = time.monotonic()
                self.accelerator.print(
                    f"step {self.step} epoch {metrics['epoch']:.2f}: "
                    + " ".join(f"{k}={v:.5g}" for k, v in metrics.items() if k.startswith("val_")))
            self._stop = broadcast_object_list([self._stop])[0]
        return end or self._stop is not None

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
        reduced = self.accelerator.reduce(torch.stack([sums[k] for k in keys]), "mean")
        values = dict(zip(keys, reduced.tolist(), strict=True))
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
            last = latest_checkpoint(self.run_dir)
            raise NonFiniteLossError(
                f"training stopped at step {step}: non-finite {what} in {self.nonfinite_run} steps in a "
                f"row (train.max_nonfinite={self.cfg.max_nonfinite}); last good checkpoint: "
                f"{last if last is not None else 'none written yet'}")
        self.accelerator.print(f"step {step}: non-finite {what}, step skipped "
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
        self.log.append("steps", record)

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

        An evaluation without the metric (a task metric not due this time) changes nothing.
        """
        key, mode, _ = self.monitor(metrics)
        if key not in metrics:
            return
        rule = self.cfg.early_stopping
        delta = rule.min_delta if rule else 0.0
        if self.best is not None and self.best["metric"] != key:  # resumed with another monitor
            self.best, self.bad_evals = None, 0
        value = metrics[key]
        sign = 1.0 if mode == "min" else -1.0
        if self.best is None or sign * (self.best["value"] - value) > delta:
            self.best = {"metric": key, "value": value, "step": self.step}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if rule and self.bad_evals >= rule.patience:
                self._stop = (f"early stopping: {key} did not improve by {delta} for {rule.patience} "
                              f"evaluations (best {self.best['value']:.6g} at step {self.best['step']})")

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
