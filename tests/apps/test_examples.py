"""The runnable scripts of examples/ (docs/python-api.md), each run as a user would, at a tiny size.

``EDDIES_EXAMPLE_TINY=1`` makes each script train a few steps, so the three take seconds; what
they print is checked, and the sampling script reads the checkpoint the first one wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "EDDIES_EXAMPLE_TINY": "1", "EDDIES_DATA": str(tmp_path / "data"), "OMP_NUM_THREADS": "1",
           "TQDM_DISABLE": "1"}
    env.pop("EDDIES_DISABLE_PLUGINS", None)
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ring")
    return tmp, run("conditional_flow_on_tensors.py", str(tmp / "ring"), tmp_path=tmp)


def test_a_conditional_flow_trains_on_tensors(ring_run):
    tmp, out = ring_run
    assert f"run directory: {tmp / 'ring'}" in out
    nll = float(re.search(r"validation NLL (\S+) nats", out).group(1))
    assert nll == nll and abs(nll) < 100  # finite
    assert (tmp / "ring" / "checkpoints" / "latest").is_file() and (tmp / "ring" / "samples.png").is_file()
    assert (tmp / "ring" / "data" / "tensors.safetensors").is_file()


def test_sampling_from_the_trained_checkpoint(ring_run):
    tmp, _ = ring_run
    out = run("sample_from_checkpoint.py", str(tmp / "ring"), "-0.5", "0.5", tmp_path=tmp)
    lines = out.splitlines()
    assert lines[0].startswith("temperature 1.0: x=-0.50: mean |y| ") and ", x=+0.50: mean |y| " in lines[0]
    assert lines[1].startswith("temperature 0.7: ")
    assert lines[2].startswith("sample-mean prediction: [[") and lines[2].count("[") == 3  # two rows of two


def test_sampling_without_a_checkpoint_is_one_clear_error(tmp_path):
    env = {**os.environ, "EDDIES_DATA": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "sample_from_checkpoint.py")], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("usage: .venv/bin/python examples/sample_from_checkpoint.py")


def test_the_plugin_layer_is_registered_checked_and_used(tmp_path):
    out = run("plugin_layer.py", str(tmp_path / "runs"), tmp_path=tmp_path)
    assert out.splitlines()[0].startswith("registered flows/sinh_arcsinh@1 from ")
    assert "conformance kit: sinh_arcsinh passes every check" in out
    values = dict(re.findall(r"^\s*(.+?): validation NLL (\S+) nats$", out, re.M))
    assert set(values) == {"sinh_arcsinh + affine", "affine (a Gaussian)"}
    recipe = (tmp_path / "runs" / "sinh_arcsinh" / "recipe.json").read_text()
    assert '"type": "sinh_arcsinh@1"' in recipe  # the model was built with the plug-in's layer
