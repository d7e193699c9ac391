"""Bad command lines of train.py, evaluate.py and sample.py: each is one ``error:`` line and an exit code.

The table runs in this process through ``cli.run`` (as the command line does); a few rows and
Ctrl-C also run through the real apps in a subprocess.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eddies.core.errors import TrainingInterrupted
from eddies.engine.cli import evaluate_main, sample_main, train_main
from tests.command_line import ENV, ROOT, TINY, app, run_app

MAINS = {"train": train_main, "evaluate": evaluate_main, "sample": sample_main}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One trained run (one epoch) that every row below reads and none changes."""
    folder = tmp_path_factory.mktemp("cli") / "run"
    train_main([f"recipe={TINY}", f"run_dir={folder}", "train.epochs=1", "train.samples=false"])
    return folder


# (app, words, exit code, text the one error line contains); RUN is the trained run directory,
# TMP the test's empty temporary folder.
BAD = [
    ("train", ["recipe=TINY", "allow_other_distribution=maybe"], 2,
     "allow_other_distribution='maybe': expected true or false"),
    ("train", ["recipe=TINY", "x" * 5000 + "=1"], 2, "unknown option '" + "x" * 80 + "... (4920 more characters)'"),
    ("train", ["resume=TMP/nowhere"], 2, "TMP/nowhere is not a checkpoint"),
    ("evaluate", ["checkpoint=RUN", "out=TMP"], 2, "out=TMP is a directory; give the path of a file in it"),
    ("evaluate", ["checkpoint=RUN", "out=/dev/null/metrics.json"], 2, "out=/dev/null/metrics.json: /dev/null is "
     "not a directory"),
    ("evaluate", ["checkpoint=RUN", "batch_size=0"], 2, "batch_size=0: need batch_size >= 1"),
    ("evaluate", ["checkpoint=RUN", "batch_size=-3"], 2, "batch_size=-3: need batch_size >= 1"),
    ("evaluate", ["checkpoint=RUN", "split=nope"], 2, "unknown split 'nope'"),
    ("evaluate", ["checkpoint=RUN", "allow_other_distribution=2"], 2,
     "allow_other_distribution='2': expected true or false"),
    ("evaluate", ["checkpoint=RUN", "eval.x=1", "train.lr=" + "9" * 5000], 2, "overrides only the eval options"),
    ("evaluate", ["checkpoint=/proc/self"], 2, "/proc/self is not a checkpoint"),
    ("sample", ["checkpoint=RUN", "temperature=nan"], 2, "temperature='nan': every temperature must be a finite "
     "number > 0"),
    ("sample", ["checkpoint=RUN", "temperature=inf"], 2, "temperature='inf': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=1e999"], 2, "temperature='1e999': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=-inf"], 2, "temperature='-inf': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=1,nan"], 2, "temperature='1,nan': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=-0.5"], 2, "temperature='-0.5': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=0"], 2, "temperature='0': every temperature"),
    ("sample", ["checkpoint=RUN", "temperature=" + ",".join(["1"] * 17)], 2,
     "temperature= gives 17 temperatures; at most 16"),
    ("sample", ["checkpoint=RUN", "n=1025"], 2, "n=1025: need n <= 1024"),
    ("sample", ["checkpoint=RUN", f"n={10**30}"], 2, f"n={10**30}: need n <= 1024"),
    ("sample", ["checkpoint=RUN", "n=" + "9" * 5000], 2, "n='" + "9" * 80 + "... (4920 more characters)' is not a valid int"),
    ("sample", ["checkpoint=RUN", "n=-1"], 2, "n=-1: need n >= 1"),
    ("sample", ["checkpoint=RUN", "seed=-1"], 2, "seed=-1: need seed >= 0"),
    ("sample", ["checkpoint=RUN", f"seed={2**64}"], 2, f"seed={2**64}: need seed <= {2**63 - 1}"),
    ("sample", ["checkpoint=RUN", "out=TMP"], 2, "out=TMP is a directory"),
    ("sample", ["checkpoint=RUN", "out=/dev/null/s.png"], 2, "/dev/null is not a directory"),
    ("sample", ["checkpoint=RUN", "allow_other_distribution=nah"], 2, "allow_other_distribution='nah'"),
    # paths the system refuses: one line naming the path (the metrics are printed before the write)
    ("evaluate", ["checkpoint=RUN", "out=/proc/metrics.json"], 2,
     "cannot write the metrics (printed above) to /proc/metrics.json: "),
    ("sample", ["checkpoint=RUN", "out=/proc/eddies/s.png"], 2, "cannot write the samples to /proc/eddies/s.png: "),
    ("sample", ["checkpoint=RUN", "out=TMP/" + "a" * 300 + ".png"], 2,
     "more characters): File name too long"),
]


def _fill(word, run_dir, tmp_path):
    return word.replace("RUN", str(run_dir)).replace("TMP", str(tmp_path)).replace("TINY", str(TINY))


@pytest.mark.parametrize(("name", "words", "code", "text"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_a_bad_command_line_is_one_error_line(name, words, code, text, run_dir, tmp_path, monkeypatch, capsys):
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    argv = [_fill(w, run_dir, tmp_path) for w in words]
    status, _, err = run_app(MAINS[name], argv, monkeypatch, capsys)
    assert status == code
    assert err.startswith("error: ") and err.count("\n") == 1 and len(err) < 1000, err
    assert _fill(text, run_dir, tmp_path) in err, err
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # nothing written
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "words", "text"), [
    ("sample", ["checkpoint=RUN", "temperature=nan"], "every temperature must be a finite number > 0"),
    ("sample", ["checkpoint=RUN", "out=TMP"], "out=TMP is a directory"),
    ("evaluate", ["checkpoint=RUN", "batch_size=0"], "need batch_size >= 1"),
])
def test_the_real_command_line_prints_the_same_one_line(name, words, text, run_dir, tmp_path):
    proc = app(name, *(_fill(w, run_dir, tmp_path) for w in words), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert _fill(text, run_dir, tmp_path) in proc.stderr


def test_an_os_error_names_its_path_without_a_traceback(monkeypatch, capsys):
    def main(argv):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/" + "d" * 500)

    line = f"error: /data/{'d' * 194}... (306 more characters): Permission denied\n"
    assert run_app(main, [], monkeypatch, capsys) == (2, "", line)

    def renames(argv):
        raise OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")

    assert run_app(renames, [], monkeypatch, capsys)[2] == "error: /a -> /b: Invalid cross-device link\n"


def test_a_failed_metrics_write_names_the_file_after_printing_the_metrics(run_dir, tmp_path, monkeypatch, capsys):
    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", refuse)
    out = tmp_path / "metrics.json"
    status, printed, err = run_app(evaluate_main, [f"checkpoint={run_dir}", f"out={out}"], monkeypatch, capsys)
    assert status == 2 and json.loads(printed)["checkpoint_step"] == 6
    assert err == f"error: cannot write the metrics (printed above) to {out}: No space left on device\n"


def test_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    def saved(argv):
        raise TrainingInterrupted("training interrupted at step 3 of 12; checkpoint written: runs/x/step-3",
                                  Path("runs/x/step-3"))

    assert run_app(interrupted, [], monkeypatch, capsys) == (130, "", "error: interrupted (Ctrl-C)\n")
    assert run_app(saved, [], monkeypatch, capsys) == (
        130, "", "error: training interrupted at step 3 of 12; checkpoint written: runs/x/step-3\n")


def test_ctrl_c_of_the_real_train_command_saves_says_where_and_exits_130(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "apps" / "train.py"), f"recipe={TINY}", f"run_dir={run_dir}",
         "train.epochs=100000", "train.samples=false"],
        env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "latest").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # until training has surely started (its first checkpoint)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    (line,) = [row for row in err.splitlines() if row.startswith("error:")]
    assert "Traceback" not in err and f"checkpoint written: {run_dir / 'checkpoints'}" in line, err
    assert "resume=auto" in line
