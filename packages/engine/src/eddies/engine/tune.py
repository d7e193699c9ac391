"""Ray Tune sweeps of any recipe: one engine run per trial, ASHA or FIFO, resumable.

:func:`run_sweep` takes a recipe tree and a :class:`~eddies.engine.sweep.Sweep`, checks the
space against the recipe (before Ray starts), and runs the trials with Ray Tune. Each trial is
the training engine of ``apps/train.py`` in one process: the trial's config (dotted recipe key ->
value) is applied to the recipe, a :class:`~eddies.engine.Trainer` trains it, and after each
evaluation the trainer's metrics and its checkpoint go to ``ray.tune.report``; a trial that Ray
restarts (``Tuner.restore`` after an interruption, or a retry after a failure) resumes from
``ray.tune.get_checkpoint()``. ASHA's times count evaluations (``training_iteration``).
While the trials run, :class:`~eddies.engine.tune_progress.SweepProgress` prints a status line
per rung and per ended trial with the ETA. Without ``address`` the sweep starts a Ray instance
of its own (``address="local"``: never one that ``RAY_ADDRESS`` or another job's ``ray start``
names), and after ``ray.shutdown()`` it waits (bounded) until the processes of that session have
exited (:func:`session_processes`). Every trial's ``curves.png`` is drawn at each evaluation, so
a trial the scheduler stops keeps the curves of all its evaluations.

Layout of a sweep's run directory::

    RUN_DIR/
      sweep.json          the recipe tree and the sweep it was started with (checked on resume)
      ray/NAME/           Ray's experiment (unless the sweep sets an absolute ``storage``)
        trial_ID/         Ray's results and checkpoints of one trial ...
          run/            ... and the engine's run directory of that trial
      trials.csv          one row per trial: its values, best metric, evaluations, status
      best_recipe.yaml    the complete recipe of the best trial (``apps/train.py recipe=PATH``),
                          described by what the trial changed (:func:`describe_trial`)
      best.json           the best trial's id, metric, values and directories, and ``checkpoint``:
                          the engine checkpoint of its best evaluation (:func:`best_checkpoint`)

Starting the same sweep again with the same run directory resumes it (finished trials are kept,
unfinished ones continue from their last checkpoint). Example (a tiny recipe, 2 trials)::

    from eddies.core.recipe import find_recipe, load_yaml
    from eddies.engine.sweep import validate_sweep
    from eddies.engine.tune import run_sweep
    tree = load_yaml(find_recipe("tests/recipes/tiny_frmdn.yaml"))
    sweep = validate_sweep({"name": "demo", "num_samples": 2,
                            "space": {"train.optimizer.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}})
    report = run_sweep(tree, sweep, "runs/demo", num_cpus=2)
    print(report.table())
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eddies.core.errors import RecipeError
from eddies.engine.sweep import (
    ASHA,
    Choice,
    Grid,
    LogUniform,
    QLogUniform,
    QRandInt,
    QUniform,
    RandInt,
    Sweep,
    Uniform,
    apply_config,
    check_space,
    objective,
    override,
    with_fixed,
)

QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
FINISHED = "finished.json"  # written in a trial's run directory when its engine run returned
TRIAL_FOLDER = "trial_{}"  # a trial's folder in the experiment, by trial id


def search_space(sweep: Sweep) -> dict[str, Any]:
    """Ray Tune's ``param_space`` of the sweep: dotted recipe key -> Ray search domain."""
    from ray import tune

    def domain(d: Any) -> Any:
        if isinstance(d, Choice):
            return tune.choice(d.values)
        if isinstance(d, Grid):
            return tune.grid_search(d.values)
        if isinstance(d, QLogUniform):
            return tune.qloguniform(d.low, d.high, d.q)
        if isinstance(d, LogUniform):
            return tune.loguniform(d.low, d.high)
        if isinstance(d, QUniform):
            return tune.quniform(d.low, d.high, d.q)
        if isinstance(d, Uniform):
            return tune.uniform(d.low, d.high)
        if isinstance(d, QRandInt):
            return tune.qrandint(d.low, d.high, d.q)
        if isinstance(d, RandInt):
            return tune.randint(d.low, d.high)
        raise TypeError(f"no Ray domain for {type(d).__name__}")

    return {key: domain(dist) for key, dist in sweep.space.items()}


def scheduler(sweep: Sweep) -> Any:
    """ASHA (times in evaluations) or FIFO; metric and mode come from the TuneConfig."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = sweep.scheduler
    if isinstance(s, ASHA):
        return ASHAScheduler(
            time_attr="training_iteration", max_t=s.max_t, grace_period=s.grace_period,
            reduction_factor=s.reduction_factor, brackets=s.brackets, stop_last_trials=False,
        )
    return FIFOScheduler()


def trial_dirname(trial: Any) -> str:
    """Short, stable trial folder names (``trial_<id>``) instead of Ray's config-laden ones."""
    return TRIAL_FOLDER.format(trial.trial_id)


class ReportToTune:
    """Engine callback: after each evaluation, send the metrics and the checkpoint to Ray Tune.

    The trial's ``curves.png`` is redrawn first: a trial the scheduler stops never returns from
    ``ray.tune.report`` (Ray ends its thread with ``SystemExit`` there), so the engine's own
    drawing at the end of the run never happens; drawn before each report, the curves of a
    stopped trial hold every evaluation it made.
    """

    def on_evaluate(self, trainer: Any, metrics: Mapping[str, Any], checkpoint_dir: Path | None) -> None:
        from ray import tune

        from eddies.engine.metrics import plot_curves

        plot_curves(trainer.run_dir)
        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report({k: v for k, v in metrics.items() if _is_scalar(v)}, checkpoint=checkpoint)


def report_unreported(trainer: Any) -> None:
    """Report to Ray the evaluations a trial's engine run already has on record when Ray gave it
    no checkpoint (an interruption between the engine's checkpoint and Ray recording its report):
    the run resumes from that checkpoint, so without this those evaluations would be missing from
    Ray's history and from ``training_iteration``, the count of evaluations ASHA and the table use.
    The records are the engine's ``evals.jsonl`` up to the resumed step (the Trainer has cut it there)."""
    from ray import tune

    record = trainer.run_dir / "metrics" / "evals.jsonl"
    if trainer.step == 0 or not record.is_file():
        return
    for line in record.read_text().splitlines():
        if line.strip():
            tune.report({k: v for k, v in json.loads(line).items() if _is_scalar(v)})


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or value is None


def train_trial(config: dict[str, Any], *, recipe_tree: dict[str, Any], source: str | None,
                experiment: str, threads: int) -> None:
    """One trial: the recipe with ``config`` applied, trained by the engine in this process."""
    import torch
    from ray import tune

    from eddies.engine import Trainer

    recipe = apply_config(recipe_tree, config, source)
    if recipe.train.threads is None:
        torch.set_num_threads(threads)
    run_dir = Path(experiment) / TRIAL_FOLDER.format(tune.get_context().get_trial_id()) / "run"
    checkpoint = tune.get_checkpoint()  # set when Ray restarts the trial (restore, or a retry)
    # without one, "auto" continues a checkpoint the engine wrote before Ray recorded its report
    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext("auto") as resume:
        trainer = Trainer(recipe, run_dir, resume=resume, callbacks=(ReportToTune(),))
        if checkpoint is None:
            report_unreported(trainer)
        result = trainer.fit()
    metrics = {k: v for k, v in result.items() if _is_scalar(v)}
    (run_dir / FINISHED).write_text(json.dumps({"config": config, "metrics": metrics}, indent=2))


# ------------------------------------------------------------------------------------------
@dataclass
class TrialRow:
    trial_id: str
    config: dict[str, Any]
    best: float
    last: float
    epochs: float
    evaluations: int
    status: str
    path: str


@dataclass
class SweepReport:
    """The outcome of a sweep: one row per trial and the files written."""

    sweep: Sweep
    rows: list[TrialRow]
    run_dir: Path
    best: TrialRow | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """A fixed-width text table of all trials, best first."""
        metric = self.sweep.metric
        header = ["trial", *self.sweep.space, f"best {metric}", f"last {metric}", "epochs", "evals", "status"]
        body = [[r.trial_id, *(_fmt(r.config.get(k)) for k in self.sweep.space), _fmt(r.best),
                 _fmt(r.last), f"{r.epochs:.3g}", str(r.evaluations), r.status] for r in self.rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                 for row in [header, *body]]
        return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def engine_status(trial_dir: Path) -> str | None:
    """``finished`` or ``early-stopped`` when the trial's engine run returned, else ``None``."""
    finished = Path(trial_dir) / "run" / FINISHED
    if not finished.is_file():
        return None
    stopped = json.loads(finished.read_text())["metrics"].get("stopped", "completed")
    return "finished" if stopped == "completed" else "early-stopped"


def summarize(results: Any, sweep: Sweep, run_dir: Path) -> SweepReport:
    """Rows of a Ray ``ResultGrid`` (best first): the metric's best and last, evaluations, status.

    Status: ``finished`` (the engine ran all its epochs), ``early-stopped`` (the recipe's
    ``train.early_stopping`` ended it), ``stopped`` (the scheduler stopped it), ``error`` (it
    raised; Ray's ``error.txt`` in its directory says why), ``pending`` (it never ran).
    """
    metric, sign = sweep.metric, (1.0 if sweep.mode == "min" else -1.0)
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        values = frame[metric].dropna().tolist() if frame is not None and metric in frame else []
        trial_dir = Path(result.path)
        if result.error is not None:
            status = "error"
        else:
            status = engine_status(trial_dir) or ("stopped" if values else "pending")
        rows.append(TrialRow(
            trial_id=str(result.metrics.get("trial_id") or trial_dir.name.removeprefix("trial_")),
            config={k: result.config.get(k) for k in sweep.space},
            best=(min(values, key=lambda v: sign * v) if values else math.nan),
            last=(values[-1] if values else math.nan),
            epochs=float(result.metrics.get("epoch") or 0.0),
            evaluations=int(result.metrics.get("training_iteration") or 0),
            status=status, path=str(trial_dir),
        ))
    rows.sort(key=lambda r: (math.isnan(r.best), sign * r.best if not math.isnan(r.best) else 0.0))
    best = rows[0] if rows and not math.isnan(rows[0].best) else None
    return SweepReport(sweep=sweep, rows=rows, run_dir=run_dir, best=best)


def describe_trial(recipe_tree: Mapping[str, Any], sweep: Sweep, row: TrialRow) -> str:
    """What a trial changed in the recipe, e.g. ``frmdn_mnist, sweep frmdn_mnist_small trial
    3f2a_00004: train.optimizer.lr=0.00123, model.prior.rank=3; fixed by the sweep:
    train.epochs=5; best val_nll 1234.5``."""
    def words(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{key}={_fmt(value) if isinstance(value, float) else override(key, value).partition('=')[2]}"
                         for key, value in values.items())

    text = f"{recipe_tree.get('name')}, sweep {sweep.name or 'sweep'} trial {row.trial_id}: {words(row.config)}"
    if sweep.fixed:
        text += f"; fixed by the sweep: {words(sweep.fixed)}"
    return f"{text}; best {sweep.metric} {_fmt(row.best)}"


def best_checkpoint(run: Path, metric: str, mode: str) -> tuple[int | None, Path | None]:
    """``(step, checkpoint folder)`` of the evaluation where a trial's engine run ``run`` scored
    its best ``metric`` (the first such evaluation, as the engine's ``best`` pointer takes it).

    The step comes from the run's ``metrics/evals.jsonl``; the folder is ``checkpoints/step-N``
    when it is still on disk, else ``None`` (the engine keeps its newest checkpoints and the one
    its own ``train.monitor`` metric chose, which is this one unless the sweep optimises another
    metric than the recipe monitors). ``(None, None)`` when no evaluation has a finite value.
    """
    from eddies.engine.checkpoint import checkpoint_name

    record = run / "metrics" / "evals.jsonl"
    sign = 1.0 if mode == "min" else -1.0
    best: tuple[float, int] | None = None
    for line in record.read_text().splitlines() if record.is_file() else ():
        values = json.loads(line) if line.strip() else {}
        value = values.get(metric)
        if isinstance(value, int | float) and math.isfinite(value) and (best is None or sign * value < sign * best[0]):
            best = (value, int(values["step"]))
    if best is None:
        return None, None
    folder = run / "checkpoints" / checkpoint_name(best[1])
    return best[1], folder if (folder / "state.json").is_file() else None


def write_outputs(report: SweepReport, recipe_tree: Mapping[str, Any], source: str | None) -> None:
    """``trials.csv``; and, when a trial scored, ``best_recipe.yaml`` and ``best.json``."""
    run_dir, sweep = report.run_dir, report.sweep
    csv_path = run_dir / "trials.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", *sweep.space, f"best_{sweep.metric}", f"last_{sweep.metric}",
                         "epochs", "evaluations", "status", "path"])
        for r in report.rows:
            writer.writerow([r.trial_id, *(_fmt(r.config.get(k)) for k in sweep.space), r.best, r.last,
                             r.epochs, r.evaluations, r.status, r.path])
    report.files["trials"] = csv_path
    if report.best is None:
        return
    best = report.best
    recipe = apply_config(recipe_tree, best.config, source)
    tree = recipe.to_dict()
    tree["description"] = describe_trial(recipe_tree, sweep, best)
    recipe_path = run_dir / "best_recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(tree, sort_keys=False))
    step, checkpoint = best_checkpoint(Path(best.path) / "run", sweep.metric, sweep.mode)
    summary = {"trial": best.trial_id, "metric": sweep.metric, "mode": sweep.mode, "best": best.best,
               "config": best.config, "recipe": str(recipe_path), "trial_dir": best.path,
               "run_dir": str(Path(best.path) / "run"), "step": step,
               "checkpoint": None if checkpoint is None else str(checkpoint)}
    (run_dir / "best.json").write_text(json.dumps(summary, indent=2))
    report.files.update(best_recipe=recipe_path, best=run_dir / "best.json")


# ------------------------------------------------------------------------------------------
SHUTDOWN_WAIT_S = 30.0  # how long run_sweep waits for its Ray session's processes to exit


def session_processes(session_dir: str | os.PathLike[str]) -> dict[int, str]:
    """Live processes of one Ray session (pid -> command line), other than this process.

    A process belongs to the session when its command line names the session directory (GCS
    server, raylet, monitors: ``--session_dir=...``) or when it holds a file open inside it
    (every worker and agent writes its stdout and stderr to the session's ``logs/``). Processes
    of any other Ray session on the machine match neither. Reads ``/proc`` (Linux); elsewhere
    the result is empty.
    """
    marker = os.fspath(session_dir).rstrip("/") + "/"
    found: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if not cmdline:  # a zombie, or a kernel thread
                continue
            ours = marker in cmdline + "/" or any(
                os.readlink(fd).startswith(marker) for fd in (entry / "fd").iterdir())
        except OSError:  # gone meanwhile, or another user's process (not ours either way)
            continue
        if ours:
            found[int(entry.name)] = cmdline
    return found


def wait_for_session_exit(session_dir: str | os.PathLike[str], timeout: float = SHUTDOWN_WAIT_S,
                          poll: float = 0.1) -> dict[int, str]:
    """Poll until no process of the Ray session is left or ``timeout`` seconds passed.

    ``ray.shutdown()`` kills the raylet and the GCS server; their workers notice and exit on
    their own, which on a loaded machine takes seconds. Returns the processes still running at
    the deadline (empty when all exited).
    """
    deadline = time.monotonic() + timeout
    while (left := session_processes(session_dir)) and time.monotonic() < deadline:
        time.sleep(poll)
    return left


def _session_dir() -> str | None:
    """The session directory of the Ray instance this process runs (no public Ray API gives it)."""
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    return node.get_session_dir_path() if node is not None else None


def _shutdown(ray: Any, session_dir: str | None) -> None:
    """``ray.shutdown()``; then, for a local instance, make sure its processes have exited.

    They get :data:`SHUTDOWN_WAIT_S` seconds to exit on their own; any still running then (a
    worker busy in a trial when the sweep was interrupted can outlive its raylet) is sent
    SIGTERM, and SIGKILL 5 s later, with a warning naming them. Only processes of this
    sweep's own session are touched (:func:`session_processes`).
    """
    ray.shutdown()
    if session_dir is None:
        return
    left = wait_for_session_exit(session_dir, SHUTDOWN_WAIT_S)
    log = logging.getLogger(__name__)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not left:
            return
        log.warning("%d process(es) of Ray session %s still running after ray.shutdown(), sending %s: %s",
                    len(left), session_dir, sig.name,
                    "; ".join(f"{pid} {cmd[:80]}" for pid, cmd in sorted(left.items())))
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        left = wait_for_session_exit(session_dir, timeout=5.0)
    if left:
        log.warning("Ray session %s: processes %s did not exit", session_dir, sorted(left))


def _started_with(run_dir: Path, recipe_tree: Mapping[str, Any], sweep: Sweep) -> None:
    """Record what the sweep runs; a resumed sweep must run the same recipe and sweep."""
    state = {"recipe": dict(recipe_tree), "sweep": sweep.to_dict()}
    path = run_dir / "sweep.json"
    if path.is_file():
        before = json.loads(path.read_text())
        for key in ("recipe", "sweep"):
            if before.get(key) != json.loads(json.dumps(state[key])):
                raise RecipeError(
                    f"{run_dir} holds a sweep started with another {key}; resuming it would mix "
                    "two experiments. Choose another run_dir, or delete that directory to start over",
                    key, str(path),
                )
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))


def run_sweep(
    recipe_tree: Mapping[str, Any],
    sweep: Sweep,
    run_dir: str | os.PathLike[str],
    *,
    source: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> SweepReport:
    """Run (or resume) ``sweep`` over ``recipe_tree``; write the table and the best recipe.

    ``address`` attaches to a running Ray cluster (``"auto"`` or ``"HOST:PORT"``) instead of
    starting a local Ray with ``num_cpus`` CPUs (default: all). Ray is shut down when this returns
    or raises; a local instance's processes have exited by then (given :data:`SHUTDOWN_WAIT_S`
    seconds to exit, then terminated with a warning naming them). ``progress`` prints a status
    line per rung and per ended trial with the ETA (:class:`~eddies.engine.tune_progress.SweepProgress`;
    on a restored sweep, the setting it was started with). ``verbose=1`` also shows Ray's progress
    and the trials' output.
    """
    recipe_tree = with_fixed(recipe_tree, sweep, source)
    check_space(recipe_tree, sweep, source)
    sweep = objective(recipe_tree, sweep, source)
    epochs = apply_config(recipe_tree, {}, source).train.epochs  # a trial's, unless the space sets it
    run_dir = Path(run_dir).expanduser().resolve()
    _started_with(run_dir, recipe_tree, sweep)
    storage = Path(sweep.storage).expanduser() if sweep.storage else run_dir / "ray"
    name = sweep.name or "sweep"
    experiment = storage / name
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)

    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from eddies.engine.tune_progress import SweepProgress

    # "local": a new instance of our own, even when RAY_ADDRESS is set or another job's `ray start`
    # cluster runs here (with None Ray would attach to it, and the shutdown below would wait for,
    # and end, that job's processes)
    ray.init(address=address or "local", num_cpus=None if address else num_cpus, include_dashboard=False,
             log_to_driver=verbose > 0, logging_level=logging.INFO if verbose else logging.WARNING)
    session_dir = None if address else _session_dir()  # an attached cluster's processes are not ours
    if not verbose:
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, recipe_tree=dict(recipe_tree), source=source,
                                 experiment=str(experiment), threads=max(1, int(sweep.resources.cpu))),
            {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu},
        )
        if tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=search_space(sweep),
                tune_config=tune.TuneConfig(
                    metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples,
                    scheduler=scheduler(sweep),
                    search_alg=BasicVariantGenerator(random_state=sweep.seed, max_concurrent=sweep.max_concurrent or 0),
                    trial_dirname_creator=trial_dirname, reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(storage), verbose=min(verbose, 3),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                    callbacks=[SweepProgress(sweep, epochs, experiment)] if progress else None,
                ),
            )
        results = tuner.fit()
    finally:
        _shutdown(ray, session_dir)
    report = summarize(results, sweep, run_dir)
    write_outputs(report, recipe_tree, source)
    return report


__all__ = ["QUIET_ENV", "SHUTDOWN_WAIT_S", "ReportToTune", "SweepReport", "TrialRow", "best_checkpoint", "describe_trial",
           "engine_status", "run_sweep", "scheduler", "search_space", "session_processes", "summarize",
           "train_trial", "trial_dirname", "wait_for_session_exit", "write_outputs"]
