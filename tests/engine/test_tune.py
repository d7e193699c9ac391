"""Ray Tune sweeps: sweep-file validation, the search space, and real ASHA sweeps of a tiny recipe.

The sweeps run ``apps/tune.py`` in a subprocess (as a user would), on the engine's synthetic
linear-Gaussian task: 4 trials of a few optimizer steps each, 2 at a time, one thread each.
"""

from __future__ import annotations

import csv
import json
import math
import os
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
from eddies.engine.tune import run_sweep, search_space

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
    return {"name": "t", "space": {"train.optimizer.lr": dict(LR)}, **changes}


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
    assert info.value.path == "scheduler.max_t" and str(tmp_path / "s.yaml") in str(info.value)


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


def _session_processes(driver_pid: int) -> list[str]:
    """Processes of the Ray session a driver started (its name ends with the driver's pid)."""
    marker, found = f"_{driver_pid}/", []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if marker in cmdline or marker in cwd + "/":
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def _launch(tmp_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(APP), f"recipe={tmp_path / 'tiny.yaml'}", f"sweep={tmp_path / 'tiny_asha.yaml'}",
         f"run_dir={run_dir}", "num_cpus=2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    assert not _session_processes(proc.pid), "Ray processes left behind"
    return out, err


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
    table = out.splitlines()
    assert table[0].split()[:2] == ["trial", "train.optimizer.lr"]
    assert [line.split()[0] for line in table[2:6]] == [r["trial"] for r in _rows(run_dir)]
    assert table[2].split()[0] == best["trial"]
    # the best recipe is complete and loads as apps/train.py would load it
    recipe = load_recipe(run_dir / "best_recipe.yaml")
    assert recipe.train.optimizer.config.lr == float(best["train.optimizer.lr"])
    assert recipe.task.to_dict() == load_recipe(TREE).task.to_dict()
    summary = json.loads((run_dir / "best.json").read_text())
    assert summary["trial"] == best["trial"] and summary["best"] == pytest.approx(float(best["best_val_nll"]))
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
        assert list(Path(row["path"]).glob("checkpoint_*/state.json")), "no checkpoint reported to Tune"


def test_a_finished_sweep_started_again_repeats_no_trial(asha_sweep):
    tmp, run_dir, out, _ = asha_sweep
    before, rows = _trial_files(run_dir), _rows(run_dir)
    again, _ = _finish(_launch(tmp, run_dir))
    assert _trial_files(run_dir) == before
    assert _rows(run_dir) == rows
    assert again.splitlines()[:6] == out.splitlines()[:6]


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_its_unfinished_trials(tmp_path):
    """Ctrl-C during the trials, then the same command: finished trials stay, the others continue."""
    tree = {**TREE, "task": {**TREE["task"], "n_train": 640}, "train": {**TREE["train"], "epochs": 4}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tree))
    sweep = {**SWEEP, "scheduler": {"type": "fifo"}, "max_concurrent": 1,
             "space": {"train.optimizer.lr": {"type": "grid", "values": [0.05, 0.01]}}}
    (tmp_path / "tiny_asha.yaml").write_text(yaml.safe_dump(sweep))
    run_dir = tmp_path / "run"
    proc = _launch(tmp_path, run_dir)
    deadline = time.monotonic() + 240
    # wait until the first trial finished and the second has reported at least one checkpoint
    while time.monotonic() < deadline and proc.poll() is None:
        finished = list(run_dir.glob("ray/*/trial_*/run/finished.json"))
        reported = [p for p in run_dir.glob("ray/*/trial_*/checkpoint_*") if not (p.parent / "run" / "finished.json").exists()]
        if finished and reported:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the sweep ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert not _session_processes(proc.pid), "Ray processes left behind after Ctrl-C"
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
