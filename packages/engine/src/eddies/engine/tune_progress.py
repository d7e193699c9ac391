"""Status lines of a running sweep: the trial, its values, the metric, its status and the ETA.

:class:`SweepProgress` is a Ray Tune callback in the driver (``apps/tune.py`` passes it to the
run): it prints one line when a trial reaches an ASHA rung (under FIFO: at every evaluation) and
one when a trial ends, on stdout, while the trials run. Example (the ASHA sweep of
``tests/engine/test_tune.py``)::

    sweep tiny_asha: 4 trials, ASHA rungs at evaluations 1, 2 (max_t 3), metric val_nll (min)
    [   14s] trial 1b2c3_00000 rung 1  lr=0.05  val_nll=1.913  continues      | 0/4 ended, ETA <=40s
    [   15s] trial 1b2c3_00002 rung 1  lr=0.0001  val_nll=9.54  stopped by ASHA  | 1/4 ended, ETA <=31s
    [   21s] trial 1b2c3_00000 finished after 3 evals  lr=0.05  best val_nll=1.51  | 2/4 ended, ETA <=12s

Values are named by the shortest dotted suffix that tells the swept keys apart
(``train.optimizer.lr`` -> ``lr``). The ETA is the work left divided by this session's rate:
a trial's work done is its fraction evaluations / ``max_t`` under ASHA, epochs / ``train.epochs``
under FIFO; every trial not yet ended is counted as running to its end. ASHA stops trials early,
so under ASHA the ETA is an upper bound (printed ``<=``). After a restore the rate counts only
the work of the restored session.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from eddies.engine.sweep import ASHA, Grid, Sweep
from eddies.engine.tune import TRIAL_FOLDER, engine_status

ENDED = ("TERMINATED", "ERROR")  # Ray's Trial.status of a trial that will not run again


def short_names(keys: Iterable[str]) -> dict[str, str]:
    """Each dotted key -> its shortest dotted suffix that is not a suffix of another key."""
    keys = list(keys)
    names = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[-n:])
            if not any(other != key and (other == name or other.endswith("." + name)) for other in keys):
                break
        names[key] = name
    return names


def asha_rungs(scheduler: ASHA) -> list[int]:
    """The evaluations at which ASHA compares trials (Ray's ``_Bracket``: min_t * rf^k < max_t)."""
    rungs = set()
    for s in range(scheduler.brackets):
        count = int(math.log(scheduler.max_t / scheduler.grace_period) / math.log(scheduler.reduction_factor) - s + 1)
        rungs.update(scheduler.grace_period * scheduler.reduction_factor ** (k + s) for k in range(count))
    return sorted(int(r) for r in rungs if r < scheduler.max_t)


def trial_count(sweep: Sweep) -> int:
    """Trials the sweep creates: ``num_samples`` times the size of the grid."""
    return sweep.num_samples * math.prod(len(d.values) for d in sweep.space.values() if isinstance(d, Grid))


def duration(seconds: float) -> str:
    """``47s``, ``3m05s``, ``1h02m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class SweepProgress(Callback):
    """Print a status line per rung (FIFO: per evaluation) and per ended trial, with the ETA.

    ``epochs`` is the recipe's ``train.epochs`` (a trial's own value when the space sweeps it);
    ``experiment`` is the folder holding the ``trial_<id>`` folders (read to tell a finished
    trial from an early-stopped one). Ray pickles the callback with the experiment, so the
    state is (re)set in :meth:`setup`, which Ray calls when a run or a restored run starts.
    """

    def __init__(self, sweep: Sweep, epochs: int, experiment: Path | str,
                 write: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.sweep, self.epochs, self.experiment = sweep, int(epochs), Path(experiment)
        self.write, self.clock = write, clock
        self.total = trial_count(sweep)
        self.names = short_names(sweep.space)
        self.asha = sweep.scheduler if isinstance(sweep.scheduler, ASHA) else None
        self.rungs = asha_rungs(self.asha) if self.asha else []
        self._reset()

    def _reset(self) -> None:
        self.started = self.clock()
        self.first: dict[str, float] = {}  # trial id -> its fraction done when this session started it
        self.done: dict[str, float] = {}  # trial id -> its latest fraction done
        self.best: dict[str, float] = {}  # trial id -> its best metric so far
        self.ended: set[str] = set()
        self.said_stopped: set[str] = set()

    # Ray Tune hooks ---------------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        self._reset()
        if self.asha:
            how = (f"ASHA rungs at evaluations {', '.join(map(str, self.rungs)) or '-'} "
                   f"(max_t {self.asha.max_t})")
        else:
            how = "FIFO"
        self._print(f"sweep {self.sweep.name or 'sweep'}: {self.total} trials, {how}, "
                    f"metric {self.sweep.metric} ({self.sweep.mode})")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.first.setdefault(trial.trial_id, self._fraction(trial, trial.last_result or {}))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        tid = trial.trial_id
        self.first.setdefault(tid, 0.0)
        self.done[tid] = self._fraction(trial, result)
        value = result.get(self.sweep.metric)
        if isinstance(value, int | float) and math.isfinite(value):
            best = self.best.get(tid)
            better = best is None or (value < best if self.sweep.mode == "min" else value > best)
            self.best[tid] = value if better else best
        evals = int(result.get("training_iteration") or 0)
        if self.asha:
            stopped = bool(result.get("done")) and evals < self.asha.max_t
            if evals not in self.rungs and not stopped:
                return
            where = f"rung {self.rungs.index(evals) + 1}" if evals in self.rungs else f"eval {evals}"
            status = "stopped by ASHA" if stopped else "continues"
            if stopped:
                self.ended.add(tid)
                self.said_stopped.add(tid)
        else:
            where, status = f"eval {evals}", "running"
        self._print(self._line(trial, where, f"{self.sweep.metric}={_number(value)}", status, trials))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, self._status(trial))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, "error")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._print(f"sweep ended after {duration(self.clock() - self.started)}: "
                    f"{sum(map(self._has_ended, trials))}/{self.total} trials ended")

    # lines -------------------------------------------------------------------------------------
    def _ended(self, trial: Any, trials: list, status: str) -> None:
        tid = trial.trial_id
        self.ended.add(tid)
        if tid in self.said_stopped:
            return  # its rung line said it already
        evals = int((trial.last_result or {}).get("training_iteration") or 0)
        where = f"{status} after {evals} eval{'s' * (evals != 1)}"
        self._print(self._line(trial, where, f"best {self.sweep.metric}={_number(self.best.get(tid))}", "", trials))

    def _line(self, trial: Any, where: str, metric: str, status: str, trials: list) -> str:
        values = " ".join(f"{self.names[k]}={_number(trial.config.get(k))}" for k in self.sweep.space)
        parts = [f"[{duration(self.clock() - self.started):>6}] trial {trial.trial_id} {where}", values, metric]
        return "  ".join([*parts, *([status] if status else []), f"| {self._eta(trials)}"])

    def _eta(self, trials: list) -> str:
        ended = sum(map(self._has_ended, trials))
        left = sum(1.0 - self._current(t) for t in trials if not self._has_ended(t))
        left += max(0, self.total - len(trials))
        progress = sum(self._current(t) - self.first[t.trial_id] for t in trials if t.trial_id in self.first)
        text = f"{ended}/{self.total} ended"
        if left <= 0:
            return text
        if progress <= 0:
            return f"{text}, ETA unknown"
        eta = left * (self.clock() - self.started) / progress
        return f"{text}, ETA {'<=' if self.asha else ''}{duration(eta)}"

    def _has_ended(self, trial: Any) -> bool:
        return trial.status in ENDED or trial.trial_id in self.ended

    def _current(self, trial: Any) -> float:
        return self.done.get(trial.trial_id, self._fraction(trial, trial.last_result or {}))

    def _fraction(self, trial: Any, result: dict) -> float:
        """How much of its work a trial has done: evaluations / max_t (ASHA), epochs / train.epochs."""
        if self.asha:
            done = (result.get("training_iteration") or 0) / self.asha.max_t
        else:
            done = (result.get("epoch") or 0.0) / self._epochs(trial)
        return min(1.0, float(done))

    def _status(self, trial: Any) -> str:
        """finished / early-stopped (the engine ended the trial's run) / stopped (the scheduler).

        A trial ASHA stops at ``max_t`` may end before its engine run has written its
        ``finished.json``; its last result's epoch tells whether it had trained all its epochs.
        """
        status = engine_status(self.experiment / TRIAL_FOLDER.format(trial.trial_id))
        if status is None:
            epoch = float((trial.last_result or {}).get("epoch") or 0.0)
            status = "finished" if epoch >= self._epochs(trial) - 1e-9 else "stopped"
        return status

    def _epochs(self, trial: Any) -> int:
        return max(1, int(trial.config.get("train.epochs", self.epochs)))

    def _print(self, line: str) -> None:
        (self.write or _print_flush)(line)


def _print_flush(line: str) -> None:
    print(line, flush=True)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


__all__ = ["SweepProgress", "asha_rungs", "duration", "short_names", "trial_count"]
