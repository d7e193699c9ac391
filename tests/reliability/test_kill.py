"""kill -9 at random moments, and Ctrl-C: a resumed run ends exactly like an uninterrupted one.

A tiny run (24 steps, a checkpoint after every step, an evaluation every 2, 2 checkpoints kept,
a cosine schedule) is forked from this process and killed with SIGKILL: at a random time, or
by itself at a randomly chosen call of one of the functions that write checkpoints and metrics
(files written but not renamed, renamed but no pointer yet, between the pointers, while an old
checkpoint is deleted, after a metrics record, half-way through a tensor file), once twice
(the resumed run is killed too), once right after the run's last 'latest' pointer. Then
``resume=auto`` finishes it here, and its final metrics, weights, checkpoint folders and
metrics files (wall-clock fields aside) must equal those of an uninterrupted run. The trials
are drawn from a fixed seed, so a failure repeats.
"""

import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

import eddies.core.files as files
import eddies.engine.trainer as trainer_module
from eddies.core.errors import TrainingInterrupted
from eddies.engine import MetricsLog, Trainer, read_checkpoint
from tests.engine.conftest import tiny_recipe

TRAIN = {"epochs": 4, "checkpoint_every": 1, "eval_every": 2, "keep_checkpoints": 2,
         "scheduler": {"type": "cosine", "warmup_steps": 3}}

POINTS = {  # name: (owner, attribute, when the process kills itself)
    "files written, before the rename": (files, "fsync_tree", "before"),
    "renamed, before the 'latest' pointer": (files, "_publish", "after"),
    "after writing a pointer": (trainer_module, "write_pointer", "after"),
    "deleting a folder": (shutil, "rmtree", "before"),
    "after appending a metrics record": (MetricsLog, "append", "after"),
    "half-way through a tensor file": (Path, "write_bytes", "half"),
}


def kill_at(monkeypatch, point, n):
    """Make this process SIGKILL itself at the ``n``-th call of ``point``."""
    owner, name, when = POINTS[point]
    real, calls = getattr(owner, name), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            if when == "half":
                path, data = args
                with open(path, "wb") as f:
                    f.write(data[: len(data) // 2])
            if when in ("before", "half"):
                os.kill(os.getpid(), signal.SIGKILL)
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def count_calls(monkeypatch):
    """Count the calls of every kill point from now on."""
    counts = dict.fromkeys(POINTS, 0)

    def counting(point, real):
        def wrapper(*args, **kwargs):
            counts[point] += 1
            return real(*args, **kwargs)
        return wrapper

    for point, (owner, name, _) in POINTS.items():
        monkeypatch.setattr(owner, name, counting(point, getattr(owner, name)))
    return counts


def forked_run(run_dir, monkeypatch, point=None, n=None):
    """Fork a process that runs the tiny recipe into ``run_dir`` (resume=auto); return its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if point is not None:
                kill_at(monkeypatch, point, n)
            Trainer(tiny_recipe(TRAIN), run_dir, resume="auto").fit()
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    return pid


def outcome(run_dir):
    """What a finished run leaves: metrics records (without wall-clock fields), folders, pointers, weights."""
    log = MetricsLog(run_dir)
    folder = run_dir / "checkpoints"
    latest = read_checkpoint(run_dir)
    return {
        "steps": [{k: v for k, v in r.items() if k != "samples_per_s"} for r in log.read("steps")],
        "evals": log.read("evals"),
        "folders": sorted(p.name for p in folder.iterdir()),
        "best": (folder / "best").read_text(),
        "latest": latest.path.name,
        "files": latest.state["files"],  # SHA-256 of the weights, optimizer and RNG states: bit for bit
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, how long it takes, and how often it calls each kill point."""
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    with pytest.MonkeyPatch.context() as mp:
        counts = count_calls(mp)
        start = time.monotonic()
        result = Trainer(tiny_recipe(TRAIN), run_dir).fit()
        seconds = time.monotonic() - start
    return result, outcome(run_dir), seconds, counts


def trials():
    rng = random.Random(18)
    chosen = [(point, None) for point in POINTS]  # one self-kill at each point, at a random call
    chosen += [("timer", rng.random()) for _ in range(2)]  # SIGKILL at a random time
    chosen += [("twice", None)]  # killed, resumed, killed again during the resumed run
    chosen += [("last pointer", None)]  # after the final 'latest', before 'best' and pruning
    return [pytest.param(kind, fraction, rng.random(), id=f"{i}-{kind}") for i, (kind, fraction) in enumerate(chosen)]


@pytest.mark.slow
@pytest.mark.parametrize("kind, fraction, draw", trials())
def test_kill_9_then_resume_ends_exactly_like_an_uninterrupted_run(reference, tmp_path, monkeypatch, kind, fraction,
                                                                   draw):
    result, expected, seconds, counts = reference
    run_dir = tmp_path / "run"
    rng = random.Random(draw)
    if kind == "timer":
        pid = forked_run(run_dir, monkeypatch)
        time.sleep(fraction * 0.7 * seconds)  # the reference, the first run here, was slower
        os.kill(pid, signal.SIGKILL)
        kills = [os.waitpid(pid, 0)[1]]
    else:
        if kind in POINTS:  # at a random call of this point
            cuts = [(kind, rng.randint(1, counts[kind]))]
        elif kind == "last pointer":
            cuts = [("after writing a pointer", counts["after writing a pointer"])]
        else:  # twice: at random points, the second in the resumed run
            cuts = [(point, rng.randint(1, max(1, counts[point] // 2))) for point in rng.sample(sorted(POINTS), 2)]
        kills = [os.waitpid(forked_run(run_dir, monkeypatch, point, n), 0)[1] for point, n in cuts]
        assert os.WIFSIGNALED(kills[0]) and os.WTERMSIG(kills[0]) == signal.SIGKILL, kills
    assert all(os.WIFSIGNALED(k) or os.WEXITSTATUS(k) == 0 for k in kills), kills  # killed, or had finished

    resumed = Trainer(tiny_recipe(TRAIN), run_dir, resume="auto").fit()
    assert resumed == result
    assert outcome(run_dir) == expected
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))


# Ctrl-C ---------------------------------------------------------------------------------------------
class Interrupt:
    """Send this process SIGINT ``times`` times from the evaluation at ``step``."""

    def __init__(self, step, times=1):
        self.step, self.times = step, times

    def on_evaluate(self, trainer, metrics, checkpoint_dir):
        if metrics["step"] == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # the handler runs in this thread, between two bytecodes


def test_ctrl_c_finishes_the_step_saves_and_says_where(tmp_path, reference):
    result, expected, _, _ = reference
    run_dir = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as err:
        Trainer(tiny_recipe(TRAIN), run_dir, callbacks=[Interrupt(6)]).fit()
    checkpoint = run_dir / "checkpoints" / "step-000007"
    assert err.value.checkpoint == checkpoint
    assert str(err.value) == (f"training interrupted at step 7 of 24; checkpoint written: {checkpoint} "
                              f"(continue with resume=auto and run_dir={run_dir})")
    assert signal.getsignal(signal.SIGINT) is before
    assert read_checkpoint(run_dir).state["step"] == 7
    assert Trainer(tiny_recipe(TRAIN), run_dir, resume="auto").fit() == result
    assert outcome(run_dir) == expected


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_recipe(TRAIN), run_dir, callbacks=[Interrupt(4, times=2)]).fit()
    assert read_checkpoint(run_dir).state["step"] == 4  # the one before the interruption
    assert Trainer(tiny_recipe({**TRAIN, "epochs": 5}), run_dir, resume="auto").fit()["step"] == 30  # unlocked
