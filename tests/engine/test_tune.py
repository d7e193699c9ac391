"""Ray Tune sweeps: sweep-file validation, the search space, and real ASHA sweeps of a tiny recipe.

The sweeps run ``apps/tune.py`` in a subprocess (as a user would), on the engine's synthetic
linear-Gaussian task: 4 trials of a few optimizer steps each, 2 at a time, one thread each.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from eddies.core import RecipeError, load_recipe
from eddies.core.recipe import find_recipe, load_yaml, parse_override
from eddies.engine.sweep import check_space, load_sweep, override, validate_sweep, with_fixed
from eddies.engine.tune import run_sweep, search_space, session_processes, wait_for_session_exit
from eddies.engine.tune_progress import asha_rungs, short_names

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "tune.py"

TREE = {
    "name": "tiny",
    "seed": 1,
    "task": {"type": "synthetic_regression", "n_train": 64, "n_validation": 32, "n_test": 16},
    "model": {"type": "gaussian_regression"},
    "train": {"batch_size": 16, "epochs": 3, "optimizer": {"type": "adam", "lr": 0.01}, "samples": False},
}
LR = {"type": "loguniform", "low": 1e-4, "high": 1e-1}


def sweep_tree(**changes):
    return {"name": "t", "metric": "val_nll", "mode": "min", "space": {"train.optimizer.lr": dict(LR)}, **changes}


# ------------------------------------------------------------------------------------------
# sweep files: every mistake fails before Ray starts and names the key
@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"space": {}}, "space", "at least 1 item"),
        ({"num_sample": 4}, "num_sample", "Did you mean 'num_samples'"),
        ({"space": {"train.optimizer.lr": {"type": "loguniform", "low": 0.0, "high": 1.0}}},
         "space[train.optimizer.lr].low", "greater than 0"),
        ({"space": {"train.optimizer.lr": {"type": "uniform", "low": 0.5, "high": 0.1}}},
         "space[train.optimizer.lr]", "low (0.5) must be smaller than high (0.1)"),
        ({"space": {"train.batch_size": {"type": "randint", "low": 8, "high": 8}}},
         "space[train.batch_size]", "must be smaller"),
        ({"space": {"train.batch_size": {"type": "qrandint", "low": 8, "high": 64, "q": 0}}},
         "space[train.batch_size].q", "greater than or equal to 1"),
        ({"space": {"train.optimizer.lr": {"type": "normal", "mean": 0.0}}},
         "space[train.optimizer.lr]", "'normal'"),
        ({"space": {"train.optimizer.lr": {"type": "choice", "values": []}}},
         "space[train.optimizer.lr].values", "at least 1 item"),
        ({"space": {"train.optimizer.lr": {"type": "choice", "values": [1], "q": 2}}},
         "space[train.optimizer.lr].q", "Allowed keys: values"),
        ({"scheduler": {"type": "asha", "max_t": 2, "grace_period": 3}}, "scheduler", "grace_period (3)"),
        ({"scheduler": {"type": "asha", "max_t": 4, "reduction": 2}}, "scheduler.reduction",
         "Did you mean 'reduction_factor'"),
        ({"resources": {"cpus": 2}}, "resources.cpus", "Did you mean 'cpu'"),
        ({"storage": "relative/dir"}, "storage", "absolute path"),
        ({"mode": "minimise"}, "mode", "'min' or 'max'"),
    ],
)
def test_bad_sweep_files_name_the_key(changes, path, words):
    with pytest.raises(RecipeError) as info:
        validate_sweep(sweep_tree(**changes), "bad.yaml")
    assert info.value.path == path
    assert words in str(info.value)
    assert "bad.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("space", "path", "words"),
    [
        ({"train.optimiser.lr": LR}, "space[train.optimiser.lr]", "Did you mean 'optimizer'"),
        ({"train.optimizer.lr": {"type": "choice", "values": [0.01, -1.0]}}, "space[train.optimizer.lr]",
         "value -1.0 does not fit the recipe: train.optimizer.lr: Input should be greater than 0"),
        ({"train.batch_size": {"type": "randint", "low": 0, "high": 4}}, "space[train.batch_size]",
         "value 0 does not fit"),
        ({"model.hidden": {"type": "grid", "values": [1]}}, "space[model.hidden]", "unknown key 'hidden'"),
    ],
)
def test_space_is_checked_against_the_recipe(space, path, words):
    with pytest.raises(RecipeError) as info:
        check_space(TREE, validate_sweep({"name": "t", "space": space}))
    assert info.value.path == path
    assert words in str(info.value)


def test_fixed_keys_are_checked_and_applied():
    sweep = validate_sweep(sweep_tree(fixed={"train.epochs": 7, "task.n_train": 48}))
    tree = with_fixed(TREE, sweep)
    assert (tree["train"]["epochs"], tree["task"]["n_train"]) == (7, 48)
    assert TREE["train"]["epochs"] == 3  # the caller's tree is not modified
    with pytest.raises(RecipeError) as info:
        with_fixed(TREE, validate_sweep(sweep_tree(fixed={"train.epoch": 7})))
    assert info.value.path == "fixed[train.epoch]" and "Did you mean 'epochs'" in str(info.value)


def test_a_bad_space_fails_before_ray_starts(tmp_path):
    import ray

    sweep = validate_sweep({"name": "t", "space": {"train.optimizer.lrate": LR}})
    with pytest.raises(RecipeError, match=r"space\[train.optimizer.lrate\]"):
        run_sweep(TREE, sweep, tmp_path / "run")
    assert not ray.is_initialized()
    assert not (tmp_path / "run").exists()


def test_sweep_file_overrides_keep_the_space_key_whole(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep_tree(num_samples=2)))
    sweep = load_sweep(tmp_path / "s.yaml", [
        "num_samples=5", "scheduler={type: asha, max_t: 4}", "scheduler.grace_period=2",
        "space.model.prior.rank={type: grid, values: [0, 1]}",
    ])
    assert sweep.num_samples == 5 and sweep.scheduler.grace_period == 2 and sweep.scheduler.max_t == 4
    assert list(sweep.space) == ["train.optimizer.lr", "model.prior.rank"]
    assert sweep.name == "t"
    with pytest.raises(RecipeError) as info:
        load_sweep(tmp_path / "s.yaml", ["scheduler.max_t=0", "scheduler.type=asha"])
    assert info.value.path == "scheduler.max_t" and info.value.source == str(tmp_path / "s.yaml")
    assert str(info.value).endswith("(from the command-line override scheduler.max_t=0)")  # not the file's mistake


def test_unknown_sweep_names_are_close_matched(monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(RecipeError) as info:
        load_sweep("frmdn_mnist_smal")
    assert info.value.path == "sweep" and "Did you mean 'frmdn_mnist_small'" in str(info.value)


def test_shipped_sweep_fits_its_recipe(monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = load_sweep("frmdn_mnist_small")
    tree = with_fixed(load_yaml(find_recipe("frmdn_mnist")), sweep)
    check_space(tree, sweep)
    assert sweep.scheduler.max_t == tree["train"]["epochs"]  # ASHA's top rung is a full trial


@pytest.mark.parametrize("value", [1e-5, 3.0e-4, 0.1, 7, True, None, "yes", "1e-3", "a: b", [1, 2.5e-6],
                                   {"type": "mlp", "hidden": [8, 8]}])
def test_override_words_round_trip(value):
    key, parsed = parse_override(override("model.a.b", value))
    assert key == "model.a.b" and parsed == value and type(parsed) is type(value)


def test_search_space_samples_inside_the_declared_bounds():
    sweep = validate_sweep({"name": "t", "space": {
        "a": {"type": "uniform", "low": -1.0, "high": 2.0},
        "b": {"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25},
        "c": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "d": {"type": "qloguniform", "low": 1e-3, "high": 1.0, "q": 1e-3},
        "e": {"type": "randint", "low": 2, "high": 5},
        "f": {"type": "qrandint", "low": 16, "high": 64, "q": 16},
        "g": {"type": "choice", "values": ["lstm", "gru"]},
        "h": {"type": "grid", "values": [1, 2, 3]},
    }})
    space = search_space(sweep)
    draw = {k: np.asarray(space[k].sample(size=2000)) for k in "abcdefg"}
    assert draw["a"].min() >= -1 and draw["a"].max() < 2 and draw["a"].std() > 0.7
    assert set(draw["b"].tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert draw["c"].min() >= 1e-4 and draw["c"].max() < 1e-2
    # log-uniform: each decade holds half of the draws (binomial sd ~ 0.011)
    assert abs(np.mean(draw["c"] < 1e-3) - 0.5) < 0.05
    assert np.allclose(draw["d"] / 1e-3, np.round(draw["d"] / 1e-3)) and draw["d"].min() >= 1e-3
    assert set(draw["e"].tolist()) == {2, 3, 4}  # high excluded
    assert set(draw["f"].tolist()) == {16, 32, 48, 64}  # high included
    assert set(draw["g"].tolist()) == {"lstm", "gru"}
    assert space["h"] == {"grid_search": [1, 2, 3]}


def test_a_run_dir_holds_one_sweep(tmp_path):
    from eddies.engine.tune import _started_with

    sweep = validate_sweep(sweep_tree())
    _started_with(tmp_path, TREE, sweep)
    _started_with(tmp_path, TREE, sweep)  # the same sweep again: a resume
    other = {**TREE, "seed": 2}
    with pytest.raises(RecipeError, match="another recipe"):
        _started_with(tmp_path, other, sweep)
    with pytest.raises(RecipeError, match="another sweep"):
        _started_with(tmp_path, TREE, validate_sweep(sweep_tree(num_samples=3)))


def test_a_local_sweep_starts_a_ray_of_its_own_even_when_another_is_named(tmp_path, monkeypatch):
    """address=None would attach to RAY_ADDRESS's (or another job's `ray start`) cluster, and the
    shutdown would then wait for and end that job's processes: a local sweep asks for "local"."""
    import ray

    class Started(Exception):
        pass

    seen = {}

    def init(**kwargs):
        seen.update(kwargs)
        raise Started

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setenv("RAY_ADDRESS", OTHER_RAY)
    with pytest.raises(Started):
        run_sweep(TREE, validate_sweep(sweep_tree()), tmp_path / "run", num_cpus=1)
    assert (seen["address"], seen["num_cpus"]) == ("local", 1)
    with pytest.raises(Started):
        run_sweep(TREE, validate_sweep(sweep_tree()), tmp_path / "run", address="auto")
    assert (seen["address"], seen["num_cpus"]) == ("auto", None)  # a cluster named on purpose


def test_best_checkpoint_is_the_first_best_evaluation_still_on_disk(tmp_path):
    from eddies.engine.tune import best_checkpoint

    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    records = [{"step": 2, "val_nll": 3.0}, {"step": 4, "val_nll": 1.5}, {"step": 6, "val_nll": math.nan},
               {"step": 8, "val_nll": 1.5}, {"step": 10, "val_nll": 2.0}]
    (run / "metrics" / "evals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for step in (4, 8, 10):
        (run / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step:06d}" / "state.json").write_text("{}")
    assert best_checkpoint(run, "val_nll", "min") == (4, run / "checkpoints" / "step-000004")
    assert best_checkpoint(run, "val_nll", "max") == (2, None)  # pruned: the step, no folder
    assert best_checkpoint(run, "val_iou", "max") == (None, None)
    assert best_checkpoint(tmp_path / "nothing", "val_nll", "min") == (None, None)


# ------------------------------------------------------------------------------------------
# the Ray session's own processes, found and waited for (no Ray needed)
HOLD = "import os, time; handle = open(os.environ['HOLD'], 'w'); print('open', flush=True); time.sleep(120)"


def _holder(path: Path) -> subprocess.Popen:
    """A process holding ``path`` open for writing, as a Ray worker holds its session log files."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD], env={**os.environ, "HOLD": str(path)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "open\n"
    return proc


def test_session_processes_are_those_naming_or_holding_the_session_dir(tmp_path):
    ours, other = tmp_path / "session_1_42", tmp_path / "session_1_4"  # other: a prefix of ours
    for session in (ours, other):
        (session / "logs").mkdir(parents=True)
    worker, stranger = _holder(ours / "logs" / "worker.out"), _holder(other / "logs" / "worker.out")
    raylet = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)",
                               f"--session_dir={ours}"], stdout=subprocess.PIPE, text=True)
    assert raylet.stdout.readline() == "up\n"  # exec'd: its command line is its own, not pytest's
    try:
        assert set(session_processes(ours)) == {worker.pid, raylet.pid}
        assert set(session_processes(other)) == {stranger.pid}
        assert session_processes(tmp_path / "session_none") == {}
    finally:
        for proc in (worker, stranger, raylet):
            proc.kill()
            proc.wait()
    assert session_processes(ours) == {}


def test_waiting_for_the_session_is_bounded_and_returns_the_leftovers(tmp_path):
    (tmp_path / "logs").mkdir()
    late = subprocess.Popen([sys.executable, "-c", HOLD.replace("time.sleep(120)", "time.sleep(1.0)")],
                            env={**os.environ, "HOLD": str(tmp_path / "logs" / "a.out")}, stdout=subprocess.PIPE)
    assert late.stdout.readline() == b"open\n"
    started = time.monotonic()
    assert wait_for_session_exit(tmp_path, timeout=60) == {}  # it exits by itself after ~1 s
    assert time.monotonic() - started < 30
    late.wait()
    stuck = _holder(tmp_path / "logs" / "b.out")
    try:
        started = time.monotonic()
        left = wait_for_session_exit(tmp_path, timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 10 and list(left) == [stuck.pid]
    finally:
        stuck.kill()
        stuck.wait()


def test_shutdown_ends_the_session_processes_that_outlive_the_wait(tmp_path, monkeypatch, caplog):
    from types import SimpleNamespace

    from eddies.engine import tune

    (tmp_path / "logs").mkdir()
    polite = _holder(tmp_path / "logs" / "a.out")  # SIGTERM ends it
    stubborn = subprocess.Popen(  # ignores SIGTERM
        [sys.executable, "-c", "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + HOLD],
        env={**os.environ, "HOLD": str(tmp_path / "logs" / "b.out")}, stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline() == "open\n"
    monkeypatch.setattr(tune, "SHUTDOWN_WAIT_S", 0.3)
    calls = []
    with caplog.at_level("WARNING", logger="eddies.engine.tune"):
        tune._shutdown(SimpleNamespace(shutdown=lambda: calls.append("shutdown")), str(tmp_path))
    assert calls == ["shutdown"]
    assert (polite.wait(10), stubborn.wait(10)) == (-signal.SIGTERM, -signal.SIGKILL)
    assert session_processes(tmp_path) == {}
    assert "2 process(es) of Ray session" in caplog.text and "sending SIGTERM" in caplog.text
    assert "1 process(es) of Ray session" in caplog.text and "sending SIGKILL" in caplog.text


# ------------------------------------------------------------------------------------------
# status lines while a sweep runs (the callback fed by hand, with a fake clock)
def test_asha_rungs_are_the_rungs_ray_uses():
    from ray.tune.schedulers import ASHAScheduler

    for max_t, grace, factor, brackets in [(5, 1, 2, 1), (3, 1, 2, 1), (20, 2, 3, 1), (16, 1, 2, 2), (4, 4, 2, 1)]:
        asha = validate_sweep(sweep_tree(scheduler={"type": "asha", "max_t": max_t, "grace_period": grace,
                                                    "reduction_factor": factor, "brackets": brackets})).scheduler
        ray_asha = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=grace,
                                 reduction_factor=factor, brackets=brackets)
        expected = sorted({int(t) for b in ray_asha._brackets for t, _ in b._rungs if t < max_t})
        assert asha_rungs(asha) == expected, (max_t, grace, factor, brackets)


def test_short_names_tell_the_keys_apart():
    assert short_names(["train.optimizer.lr", "model.prior.rank"]) == {
        "train.optimizer.lr": "lr", "model.prior.rank": "rank"}
    assert short_names(["model.a.size", "model.b.size", "a.size"]) == {
        "model.a.size": "model.a.size", "model.b.size": "b.size", "a.size": "a.size"}


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_progress_prints_rungs_ends_and_the_eta(tmp_path):
    from types import SimpleNamespace

    from eddies.engine.tune_progress import SweepProgress

    sweep = validate_sweep({"name": "demo", "metric": "val_nll", "mode": "min", "space": {"train.optimizer.lr": {"type": "grid", "values": [0.1, 0.01]}},
                            "scheduler": {"type": "asha", "max_t": 4, "grace_period": 1, "reduction_factor": 2}})
    lines, clock = [], Clock()
    progress = SweepProgress(sweep, epochs=4, experiment=tmp_path, write=lines.append, clock=clock)
    progress.setup()
    a = SimpleNamespace(trial_id="a_0", config={"train.optimizer.lr": 0.1}, status="RUNNING", last_result={})
    b = SimpleNamespace(trial_id="b_1", config={"train.optimizer.lr": 0.01}, status="PENDING", last_result={})

    def result(trial, evals, value, done=False):
        res = {"training_iteration": evals, "val_nll": value, "done": done}
        progress.on_trial_result(iteration=0, trials=trials, trial=trial, result=res)
        trial.last_result = res

    trials = [a]
    progress.on_trial_start(iteration=0, trials=trials, trial=a)
    clock.now = 10.0
    result(a, 1, 2.0)  # work 0.25 of 4 trial-units done in 10 s; 1.75 left -> 70 s
    trials.append(b)
    b.status = "RUNNING"
    progress.on_trial_start(iteration=0, trials=trials, trial=b)
    clock.now = 20.0
    result(b, 1, 5.0, done=True)  # ASHA stops b at rung 1: 0.5 done in 20 s, a's 0.75 left -> 30 s
    progress.on_trial_complete(iteration=0, trials=trials, trial=b)  # already said: no line
    b.status = "TERMINATED"
    clock.now = 30.0
    result(a, 2, 1.5)  # rung 2
    result(a, 3, 1.7)  # not a rung: no line
    clock.now = 40.0
    result(a, 4, 1.6, done=True)  # max_t: the end line follows
    (tmp_path / "trial_a_0" / "run").mkdir(parents=True)
    (tmp_path / "trial_a_0" / "run" / "finished.json").write_text(json.dumps({"metrics": {"stopped": "completed"}}))
    progress.on_trial_complete(iteration=0, trials=trials, trial=a)
    a.status = "TERMINATED"
    progress.on_experiment_end(trials=trials)
    assert lines == [
        "sweep demo: 2 trials, ASHA rungs at evaluations 1, 2 (max_t 4), metric val_nll (min)",
        "[   10s] trial a_0 rung 1  lr=0.1  val_nll=2  continues  | 0/2 ended, ETA <=1m10s",
        "[   20s] trial b_1 rung 1  lr=0.01  val_nll=5  stopped by ASHA  | 1/2 ended, ETA <=30s",
        "[   30s] trial a_0 rung 2  lr=0.1  val_nll=1.5  continues  | 1/2 ended, ETA <=20s",
        "[   40s] trial a_0 finished after 4 evals  lr=0.1  best val_nll=1.5  | 2/2 ended",
        "sweep ended after 40s: 2/2 trials ended",
    ]
    # a trial ASHA stops at max_t may end before its run wrote finished.json: its epochs tell
    late = SimpleNamespace(trial_id="c_2", config={}, last_result={"epoch": 4.0})
    assert progress._status(late) == "finished"
    late.last_result = {"epoch": 2.0}
    assert progress._status(late) == "stopped"


def test_the_best_recipe_says_what_the_trial_changed():
    from eddies.engine.tune import TrialRow, describe_trial

    sweep = validate_sweep(sweep_tree(name="small", fixed={"train.epochs": 5, "train.early_stopping": None},
                                      space={"train.optimizer.lr": LR, "model.prior.rank": {"type": "choice",
                                                                                             "values": [0, 3]}}))
    row = TrialRow(trial_id="ab_00004", config={"train.optimizer.lr": 0.00312345678, "model.prior.rank": 3},
                   best=1234.56789, last=1240.0, epochs=5.0, evaluations=5, status="finished", path="p")
    assert describe_trial({"name": "frmdn_mnist"}, sweep, row) == (
        "frmdn_mnist, sweep small trial ab_00004: train.optimizer.lr=0.00312346, model.prior.rank=3; "
        "fixed by the sweep: train.epochs=5, train.early_stopping=null; best val_nll 1234.57")


# ------------------------------------------------------------------------------------------
# real sweeps through apps/tune.py
SWEEP = {
    "name": "tiny_asha",
    "metric": "val_nll",
    "mode": "min",
    "num_samples": 1,
    "max_concurrent": 2,
    "resources": {"cpu": 1},
    "scheduler": {"type": "asha", "max_t": 3, "grace_period": 1, "reduction_factor": 2},
    # two learning rates that learn and two that barely move: ASHA stops the last two at rung 1
    "space": {"train.optimizer.lr": {"type": "grid", "values": [0.05, 0.02, 1e-4, 1e-5]}},
}


def _session_dirs(proc: subprocess.Popen) -> list[Path]:
    """The Ray session directories the driver ``proc`` started (``session_<date>_<time>_<pid>``)."""
    from ray._common.utils import get_default_ray_temp_dir

    found = Path(get_default_ray_temp_dir()).glob(f"session_*_{proc.pid}")
    return sorted(p for p in found if p.stat().st_mtime >= proc.started - 1)  # not an old pid's session


def _assert_no_leftovers(proc: subprocess.Popen, err: str) -> None:
    """The driver's own Ray session left no process (the app makes sure of it before it exits)."""
    sessions = _session_dirs(proc)
    assert len(sessions) == 1, f"expected the one Ray session of driver {proc.pid}, found {sessions}"
    left = session_processes(sessions[0])
    assert not left, f"Ray processes left behind by {sessions[0]}: {left}\n{err[-3000:]}"


OTHER_RAY = "127.0.0.1:9"  # another cluster's address, as another Ray job leaves it in RAY_ADDRESS


def _launch(tmp_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    # the sweep must start a Ray of its own, neither attach to that one nor fail on it
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "RAY_ADDRESS": OTHER_RAY}
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, str(APP), f"recipe={tmp_path / 'tiny.yaml'}", f"sweep={tmp_path / 'tiny_asha.yaml'}",
         f"run_dir={run_dir}", "num_cpus=2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    proc.started = started
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[str, str]:
    """Wait for the sweep (a bound against a hang: beside two CPU-bound processes on 2 cores the
    4-trial sweep took 220 s), check its exit status and that its Ray session left nothing."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    _assert_no_leftovers(proc, err)
    return out, err


def _table(out: str) -> list[str]:
    """The table of trials apps/tune.py prints after the status lines."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "train.optimizer.lr"])
    return lines[start:]


def _status_lines(out: str) -> list[str]:
    """The status lines printed while the sweep ran (before the table and the files' paths)."""
    lines = out.splitlines()
    return lines[:lines.index(_table(out)[0])]


def _trial_files(run_dir: Path) -> dict[str, int]:
    """mtime of every file Ray or the engine wrote per trial (they change if a trial runs again)."""
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
            for p in (run_dir / "ray").rglob("trial_*/**/*") if p.is_file()}


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory):
    """The 4-trial ASHA sweep, run once for the tests below; returns (tmp dir, run dir, stdout, stderr)."""
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TREE))
    (tmp / "tiny_asha.yaml").write_text(yaml.safe_dump(SWEEP))
    run_dir = tmp / "run"
    out, err = _finish(_launch(tmp, run_dir))
    return tmp, run_dir, out, err


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_asha_sweep_writes_the_table_and_the_best_recipe(asha_sweep):
    _, run_dir, out, err = asha_sweep
    rows = {float(r["train.optimizer.lr"]): r for r in _rows(run_dir)}
    assert sorted(rows) == [1e-5, 1e-4, 0.02, 0.05]
    for lr in (1e-5, 1e-4):  # stopped at the first rung
        assert (rows[lr]["status"], rows[lr]["evaluations"], float(rows[lr]["epochs"])) == ("stopped", "1", 1.0)
    finished = [r for r in rows.values() if r["status"] == "finished"]
    assert finished and all((r["evaluations"], float(r["epochs"])) == ("3", 3.0) for r in finished)
    # the best metric is the best of each trial's reported history
    for row in rows.values():
        history = [json.loads(line)[SWEEP["metric"]]
                   for line in (Path(row["path"]) / "result.json").read_text().splitlines()]
        assert float(row["best_val_nll"]) == pytest.approx(min(history), rel=1e-12)
        assert float(row["last_val_nll"]) == pytest.approx(history[-1], rel=1e-12)
    best = min(rows.values(), key=lambda r: float(r["best_val_nll"]))
    # the printed table lists every trial, best first
    table = _table(out)
    assert [line.split()[0] for line in table[2:6]] == [r["trial"] for r in _rows(run_dir)]
    assert table[2].split()[0] == best["trial"]
    # the best recipe is complete and loads as apps/train.py would load it
    recipe = load_recipe(run_dir / "best_recipe.yaml")
    assert recipe.train.optimizer.config.lr == float(best["train.optimizer.lr"])
    assert recipe.description == (f"tiny, sweep tiny_asha trial {best['trial']}: "
                                  f"train.optimizer.lr={best['train.optimizer.lr']}; "
                                  f"best val_nll {float(best['best_val_nll']):.6g}")
    assert recipe.task.to_dict() == load_recipe(TREE).task.to_dict()
    summary = json.loads((run_dir / "best.json").read_text())
    assert summary["trial"] == best["trial"] and summary["best"] == pytest.approx(float(best["best_val_nll"]))
    # best.json names the engine checkpoint of the best evaluation, and it is that evaluation's
    checkpoint = Path(summary["checkpoint"])
    assert checkpoint.parent == Path(best["path"]) / "run" / "checkpoints" and (checkpoint / "state.json").is_file()
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["step"] == summary["step"]
    evals = [json.loads(line) for line in (checkpoint.parents[1] / "metrics" / "evals.jsonl").read_text().splitlines()]
    assert next(e["val_nll"] for e in evals if e["step"] == summary["step"]) == summary["best"]
    # quiet: no Ray banners or progress tables
    assert "Started a local Ray instance" not in err and "Trial status" not in out + err


def test_each_trial_is_an_engine_run_with_checkpoints(asha_sweep):
    _, run_dir, _, _ = asha_sweep
    for row in _rows(run_dir):
        run = Path(row["path"]) / "run"
        evals = (run / "metrics" / "evals.jsonl").read_text().splitlines()
        assert len(evals) == int(row["evaluations"])
        recipe = json.loads((run / "recipe.json").read_text())["recipe"]
        assert recipe["train"]["optimizer"]["lr"] == float(row["train.optimizer.lr"])
        assert list((run / "checkpoints").glob("*/state.json")), f"no engine checkpoint in {run}"
        # a trial ASHA stopped keeps its curves too (drawn at each evaluation, before the report)
        assert (run / "curves.png").is_file(), f"no curves.png in the {row['status']} trial's {run}"
        assert (run / "curves.png").stat().st_mtime_ns >= (run / "metrics" / "evals.jsonl").stat().st_mtime_ns
        assert list(Path(row["path"]).glob("checkpoint_*/state.json")), "no checkpoint reported to Tune"


def test_a_finished_sweep_started_again_repeats_no_trial(asha_sweep):
    tmp, run_dir, out, _ = asha_sweep
    before, rows = _trial_files(run_dir), _rows(run_dir)
    again, _ = _finish(_launch(tmp, run_dir))
    assert _trial_files(run_dir) == before
    assert _rows(run_dir) == rows
    assert _table(again)[:6] == _table(out)[:6]
    assert not [line for line in _status_lines(again) if " trial " in line]  # no trial ran


def test_the_sweep_prints_a_status_line_per_rung_and_per_ended_trial(asha_sweep):
    _, run_dir, out, _ = asha_sweep
    status = _status_lines(out)
    assert status[0] == ("sweep tiny_asha: 4 trials, ASHA rungs at evaluations 1, 2 (max_t 3), "
                         "metric val_nll (min)")
    assert status[-1].startswith("sweep ended after ") and status[-1].endswith(": 4/4 trials ended")
    for row in _rows(run_dir):
        mine = [line for line in status if f" trial {row['trial']} " in line]
        assert all(f"lr={float(row['train.optimizer.lr']):.4g} " in line for line in mine), mine
        assert mine[0].split("] ", 1)[1].split()[2:4] == ["rung", "1"], mine
        ends = [line for line in mine if "stopped by ASHA" in line or " after " in line]
        assert len(ends) == 1, mine  # each trial's end is said once
        if row["status"] == "finished":
            assert "finished after 3 evals" in ends[0], ends
            assert f"best val_nll={float(row['best_val_nll']):.4g}" in ends[0], ends
        else:
            assert row["status"] == "stopped", row
            # the rungs are evaluations 1 and 2: rung k is evaluation k
            assert ends[0].split("] ", 1)[1].split()[2:4] == ["rung", row["evaluations"]], ends
            assert "stopped by ASHA" in ends[0], ends
    eta = re.compile(r"\| [0-4]/4 ended(, ETA (<=\d+s|<=\d+m\d\ds|unknown))?$")
    assert all(eta.search(line) for line in status[1:-1]), status


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_its_unfinished_trials(tmp_path):
    """Ctrl-C during the trials, then the same command: finished trials stay, the others continue."""
    tree = {**TREE, "task": {**TREE["task"], "n_train": 1280}, "train": {**TREE["train"], "epochs": 4}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tree))
    sweep = {**SWEEP, "scheduler": {"type": "fifo"}, "max_concurrent": 1,
             "space": {"train.optimizer.lr": {"type": "grid", "values": [0.05, 0.01]}}}
    (tmp_path / "tiny_asha.yaml").write_text(yaml.safe_dump(sweep))
    run_dir = tmp_path / "run"
    proc = _launch(tmp_path, run_dir)
    deadline = time.monotonic() + 600  # generous: a loaded machine slows Ray's many round trips
    # wait until the first trial finished and Ray's driver has recorded a result of the second (its
    # result.json line is written after the driver took the report and its checkpoint; a
    # checkpoint_* folder alone is not enough: the trial writes it before the driver knows of it,
    # and a trial restored without it starts its Ray history again, iterations_since_restore = 4)
    while time.monotonic() < deadline and proc.poll() is None:
        finished = list(run_dir.glob("ray/*/trial_*/run/finished.json"))
        recorded = [p for p in run_dir.glob("ray/*/trial_*/result.json")
                    if not (p.parent / "run" / "finished.json").exists() and p.read_text().strip()]
        if finished and recorded:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the sweep ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    _assert_no_leftovers(proc, err)  # after Ctrl-C too
    done = {p.parent.parent.name: p.stat().st_mtime_ns for p in run_dir.glob("ray/*/trial_*/run/finished.json")}
    assert len(done) == 1

    out, _ = _finish(_launch(tmp_path, run_dir))
    rows = _rows(run_dir)
    assert [r["status"] for r in rows] == ["finished", "finished"] and {r["evaluations"] for r in rows} == {"4"}
    for trial, mtime in done.items():  # the finished trial did not run again
        assert (run_dir / "ray" / sweep["name"] / trial / "run" / "finished.json").stat().st_mtime_ns == mtime
    resumed = next(r for r in rows if f"trial_{r['trial']}" not in done)
    last = json.loads((Path(resumed["path"]) / "result.json").read_text().splitlines()[-1])
    # resumed from its checkpoint: fewer evaluations since the restore than in total
    assert 0 < last["iterations_since_restore"] < last["training_iteration"] == 4
    assert math.isfinite(float(resumed["best_val_nll"]))
    assert len((Path(resumed["path"]) / "run" / "metrics" / "evals.jsonl").read_text().splitlines()) == 4
