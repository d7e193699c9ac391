"""Run directory faults: in use by another run, not a folder, under /proc, read-only, out of space.

Each is one RunDirError naming the path (and the last good checkpoint). Root ignores file modes,
so a read-only or full file system is simulated by making every write under a folder fail with
``OSError(EROFS)`` or ``OSError(ENOSPC)`` (:func:`failing_writes`).
"""

import builtins
import errno
import io
import os
import signal
import time
from pathlib import Path

import pytest
import safetensors.torch

from eddies.core.errors import RunDirError, TrainingInterrupted
from eddies.core.files import try_lock
from eddies.engine import MetricsLog, Trainer, read_checkpoint
from eddies.engine.cli import train_main
from tests.command_line import TINY, run_app
from tests.engine.conftest import tiny_recipe


def failing_writes(monkeypatch, root, code, only=""):
    """From now on, writes to paths under ``root`` (containing ``only``) raise ``OSError(code)``."""
    root = str(root)
    real = {"mkdir": os.mkdir, "open": builtins.open, "os_open": os.open, "rename": os.rename,
            "replace": os.replace}

    def hit(path):
        return isinstance(path, str | os.PathLike) and os.fspath(path).startswith(root) and only in os.fspath(path)

    def fail(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    def mkdir(path, *args, **kwargs):
        return fail(path) if hit(path) else real["mkdir"](path, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        return fail(file) if hit(file) and set(mode) & set("wax+") else real["open"](file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        return fail(path) if hit(path) and writing else real["os_open"](path, flags, *args, **kwargs)

    def move(name):
        return lambda src, dst, *a, **k: fail(src) if hit(src) or hit(dst) else real[name](src, dst, *a, **k)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "rename", move("rename"))
    monkeypatch.setattr(os, "replace", move("replace"))


class FailAfter:
    """A callback that turns the run directory read-only (or full) after the evaluation at ``step``."""

    def __init__(self, monkeypatch, root, code, step, only=""):
        self.args, self.step = (monkeypatch, root, code, only), step

    def on_evaluate(self, trainer, metrics, checkpoint_dir):
        if metrics["step"] == self.step:
            failing_writes(*self.args)


def _weights(run_dir):
    return safetensors.torch.load_file(read_checkpoint(run_dir).path / "model.safetensors")


# a second run into the same directory --------------------------------------------------------------
def test_a_second_run_into_the_same_directory_is_refused_until_the_first_ends(tmp_path):
    first = Trainer(tiny_recipe({"epochs": 1}), tmp_path)
    with pytest.raises(RunDirError, match=rf"run directory {tmp_path} is in use by another run \(pid {os.getpid()} "
                       r"on .*\): wait until it ends, or choose another run_dir"):
        Trainer(tiny_recipe({"epochs": 1}), tmp_path)
    first.fit()  # releases the lock when it ends
    assert Trainer(tiny_recipe({"epochs": 2}), tmp_path, resume="auto").fit()["step"] == 12


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path):
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child takes the lock and waits to be killed
        try:
            os.close(ready_r)
            assert try_lock(tmp_path / ".lock") is not None
            os.write(ready_w, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"x"
    try:
        with pytest.raises(RunDirError, match=rf"in use by another run \(pid {pid} on "):
            Trainer(tiny_recipe({"epochs": 1}), tmp_path)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert Trainer(tiny_recipe({"epochs": 1}), tmp_path).fit()["step"] == 6  # no stale lock after kill -9


# where a run directory cannot be -----------------------------------------------------------------
def test_a_run_directory_that_is_a_file_or_under_a_file(tmp_path):
    file = tmp_path / "file"
    file.write_text("not a folder")
    with pytest.raises(RunDirError, match=rf"^run directory {file} is a file, not a folder; choose another run_dir$"):
        Trainer(tiny_recipe(), file)
    with pytest.raises(RunDirError, match=rf"^cannot create the run directory {file / 'run'}: {file} is a file$"):
        Trainer(tiny_recipe(), file / "run")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("where", ["/proc/eddies-run", "/proc/self"])
def test_a_run_directory_under_proc(where):
    with pytest.raises(RunDirError, match=rf"^cannot (create the run directory {where}|use the run directory {where}: not writable$)"):
        Trainer(tiny_recipe(), where)


def test_the_command_line_says_it_in_one_line(tmp_path, monkeypatch, capsys):
    file = tmp_path / "file"
    file.write_text("")
    code, _, err = run_app(train_main, [f"recipe={TINY}", f"run_dir={file}"], monkeypatch, capsys)
    assert code == 2
    assert err == f"error: run directory {file} is a file, not a folder; choose another run_dir\n"


# read-only and full file systems -----------------------------------------------------------------
def test_a_read_only_run_directory(tmp_path, monkeypatch):
    failing_writes(monkeypatch, tmp_path, errno.EROFS)
    with pytest.raises(RunDirError, match=rf"^cannot create the run directory {tmp_path / 'run'}: Read-only file system$"):
        Trainer(tiny_recipe(), tmp_path / "run")
    with pytest.raises(RunDirError, match=rf"^cannot write the lock file {tmp_path}/.lock: Read-only file system; "
                       "no checkpoint written yet$"):
        Trainer(tiny_recipe(), tmp_path)


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_run_directory_that_turns_read_only_or_full_mid_run(tmp_path, monkeypatch, code):
    """After the checkpoint at step 6 every write fails: the next one (step 7's record) says so."""
    run_dir = tmp_path / "run"
    with pytest.raises(RunDirError) as err:
        Trainer(tiny_recipe({"epochs": 2}), run_dir, callbacks=[FailAfter(monkeypatch, tmp_path, code, 6)]).fit()
    assert str(err.value) == (f"cannot write metrics/steps.jsonl ({run_dir / 'metrics' / 'steps.jsonl'}): "
                              f"{os.strerror(code)}; last good checkpoint: {run_dir / 'checkpoints' / 'step-000006'}")
    monkeypatch.undo()  # the disk is writable again: the run continues from its last checkpoint
    whole = Trainer(tiny_recipe({"epochs": 2}), tmp_path / "whole").fit()
    assert Trainer(tiny_recipe({"epochs": 2}), run_dir, resume="auto").fit() == whole


def test_no_space_for_a_checkpoint_keeps_the_previous_one_and_leaves_nothing_behind(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    full = FailAfter(monkeypatch, tmp_path, errno.ENOSPC, 6, only=".safetensors")
    with pytest.raises(RunDirError) as err:
        Trainer(tiny_recipe({"epochs": 2}), run_dir, callbacks=[full]).fit()
    message = str(err.value)
    assert message.startswith(f"cannot write checkpoint {run_dir / 'checkpoints' / 'step-000012'} (")
    assert message.endswith(f"model.safetensors): No space left on device; last good checkpoint: "
                            f"{run_dir / 'checkpoints' / 'step-000006'}")
    monkeypatch.undo()
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best", "latest", "step-000006"]  # no .tmp-* left
    assert read_checkpoint(run_dir).state["step"] == 6
    assert [r["step"] for r in MetricsLog(run_dir).read("evals")] == [6, 12]  # 12's record came first
    whole = Trainer(tiny_recipe({"epochs": 2}), tmp_path / "whole").fit()
    assert Trainer(tiny_recipe({"epochs": 2}), run_dir, resume="auto").fit() == whole
    assert [r["step"] for r in MetricsLog(run_dir).read("evals")] == [6, 12]
    a, b = _weights(run_dir), _weights(tmp_path / "whole")
    assert all((a[k] == b[k]).all() for k in a)


def test_ctrl_c_when_the_disk_is_full_still_says_what_is_left(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    full = FailAfter(monkeypatch, tmp_path, errno.ENOSPC, 6, only=".safetensors")

    class CtrlC:
        def on_evaluate(self, trainer, metrics, checkpoint_dir):
            if metrics["step"] == 6:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as err:
        Trainer(tiny_recipe({"epochs": 2}), run_dir, callbacks=[full, CtrlC()]).fit()
    assert err.value.checkpoint is None
    assert str(err.value).startswith("training interrupted at step 7 of 12; no checkpoint written: cannot write "
                                     f"checkpoint {run_dir / 'checkpoints' / 'step-000007'} (")
    assert str(err.value).endswith(f"No space left on device; last good checkpoint: {run_dir / 'checkpoints' / 'step-000006'}")
