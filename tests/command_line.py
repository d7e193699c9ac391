"""Running the apps from tests: in a subprocess (:func:`app`) or in this process as the command line
does (:func:`run_app`, through :func:`eddies.engine.cli.run`); :func:`error_lines` picks the
``error:`` lines of a stderr."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eddies.engine.cli import run

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "apps" / "tiny_synthetic.yaml"
ENV = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def app(name, *args, check=True, env=None, **kwargs):
    """``apps/<name>.py args...`` in a subprocess (``env``: default :data:`ENV`); with ``check``, it must succeed."""
    proc = subprocess.run([sys.executable, str(ROOT / "apps" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, env=ENV if env is None else env, cwd=ROOT, **kwargs)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_app(main, argv, monkeypatch, capsys):
    """Run an app in this process as the command line would; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["app", *map(str, argv)])
    capsys.readouterr()  # only what the app prints
    with pytest.raises(SystemExit) as exit_:
        run(main)
        sys.exit(0)
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def error_lines(stderr):
    """The lines of ``stderr`` that start with ``error:``."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
