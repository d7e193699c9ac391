"""Multi-process training: 2 CPU processes (gloo, ``accelerate.debug_launcher``) against one process.

A global batch of ``train.batch_size`` samples is split into equal halves, one per rank; DDP
averages the halves' mean-loss gradients, which equals the global batch's mean-loss gradient, so
two processes must follow one process with the same global batch up to float32 rounding (summing
in another order). Measured here: the largest parameter difference after 12 Adam steps is about
1e-7; the tests allow 1e-5 absolute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import safetensors.torch
import torch
from accelerate import debug_launcher
from accelerate.state import AcceleratorState

from eddies.core import get_registry, register
from eddies.engine import Trainer, read_checkpoint
from eddies.models import GaussianRegression
from tests.engine.conftest import tiny_recipe

ROOT = Path(__file__).resolve().parents[2]
ATOL = 1e-5  # float32 parameters: two processes vs one, after 12 Adam steps
TRAIN = {"batch_size": 16, "epochs": 2}  # 96 samples: 6 steps per epoch, 8 samples per rank and step


class RecordingRegression(GaussianRegression):
    """gaussian_regression that records the first x-coordinate of every training sample it sees."""

    def __init__(self, data):
        super().__init__(data)
        self.batches: list[list[float]] = []

    def loss(self, batch):
        if self.training and torch.is_grad_enabled():
            self.batches.append(batch["x"][:, 0].tolist())
        return super().loss(batch)


def _recipe():
    return tiny_recipe(train=TRAIN, model={"type": "recording_regression"})


def _record(trainer: Trainer, result: dict, out: Path) -> None:
    params = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
    safetensors.torch.save_file(params, out / f"rank{trainer.rank}.safetensors")
    (out / f"rank{trainer.rank}.json").write_text(json.dumps(
        {"world": trainer.world, "batches": trainer.model.batches, "result": result}))


def _rank_main(run_dir: Path, out: Path) -> None:
    """Body of each launched rank (forked from pytest: forget the parent's single-process state)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    trainer = Trainer(_recipe(), run_dir)
    _record(trainer, trainer.fit(), out)


def _load(out: Path, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    return (safetensors.torch.load_file(out / f"rank{rank}.safetensors"),
            json.loads((out / f"rank{rank}.json").read_text()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-process run and one 1-process run of the same recipe (same global batch)."""
    tmp = tmp_path_factory.mktemp("ddp")
    with get_registry("models").scoped():
        register("models", "recording_regression", summary="records its batches (tests)")(RecordingRegression)
        (tmp / "two").mkdir()
        debug_launcher(_rank_main, args=(tmp / "run_two", tmp / "two"), num_processes=2)
        (tmp / "one").mkdir()
        trainer = Trainer(_recipe(), tmp / "run_one")
        _record(trainer, trainer.fit(), tmp / "one")
        yield tmp


def test_both_ranks_end_with_identical_parameters(runs):
    (p0, r0), (p1, r1) = _load(runs / "two", 0), _load(runs / "two", 1)
    assert r0["world"] == r1["world"] == 2
    assert p0.keys() == p1.keys()
    for name in p0:
        assert torch.equal(p0[name], p1[name]), name
    assert r0["result"]["val_nll"] == r1["result"]["val_nll"]
    # task metrics: rank 0 computes them over the whole validation split and broadcasts them
    for key in ("val_test_nll", "val_test_mse", "val_oracle_nll"):
        assert r0["result"][key] == r1["result"][key], key
    assert r0["result"]["val_test_nll"] == pytest.approx(r0["result"]["val_nll"], rel=1e-6)


def test_the_global_batch_is_split_across_ranks(runs):
    half = TRAIN["batch_size"] // 2
    (_, r0), (_, r1), (_, single) = _load(runs / "two", 0), _load(runs / "two", 1), _load(runs / "one", 0)
    steps = 2 * 6
    assert len(r0["batches"]) == len(r1["batches"]) == len(single["batches"]) == steps
    for a, b, whole in zip(r0["batches"], r1["batches"], single["batches"], strict=True):
        assert len(a) == len(b) == half
        assert not set(a) & set(b)  # each sample on one rank only
        assert sorted(a + b) == sorted(whole)  # together: the one-process global batch


def test_two_processes_match_one_process(runs):
    (two, r_two), (one, r_one) = _load(runs / "two", 0), _load(runs / "one", 0)
    for name in one:
        assert torch.allclose(two[name], one[name], rtol=0, atol=ATOL), (name, (two[name] - one[name]).abs().max())
    assert r_two["result"]["val_nll"] == pytest.approx(r_one["result"]["val_nll"], abs=1e-5)
    assert r_two["result"]["val_test_mse"] == pytest.approx(r_one["result"]["val_test_mse"], abs=1e-5)
    assert r_two["result"]["step"] == r_one["result"]["step"] == 12


def test_rank0_alone_writes_the_run(runs):
    evals = (runs / "run_two" / "metrics" / "evals.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in evals] == [6, 12]  # once per evaluation, not per rank
    state = read_checkpoint(runs / "run_two" / "checkpoints" / (runs / "run_two" / "checkpoints" / "latest")
                            .read_text().strip()).state
    assert state["processes"] == 2


def test_a_two_process_checkpoint_resumes_in_one_process(runs, tmp_path):
    """Epoch 1's checkpoint of the 2-process run, continued by one process, ends where both runs end."""
    first = next(p for p in (runs / "run_two" / "checkpoints").iterdir()
                 if p.is_dir() and read_checkpoint(p).state["step"] == 6)
    with warnings.catch_warnings(record=True) as caught:  # (recording_regression: registered by `runs`)
        warnings.simplefilter("always")
        trainer = Trainer(_recipe(), tmp_path / "resumed", resume=first)
    assert any("written by 2 processes" in str(w.message) for w in caught)
    assert trainer.step == 6
    result = trainer.fit()
    two, _ = _load(runs / "two", 0)
    for name, value in trainer.model.state_dict().items():
        assert torch.allclose(value, two[name], rtol=0, atol=ATOL), name
    assert result["step"] == 12
    _, single = _load(runs / "one", 0)
    assert trainer.model.batches == single["batches"][6:]  # epoch 2's global batches, whole


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="the accelerate command is not installed beside this Python")
def test_accelerate_launch_runs_apps_train_on_two_cpu_processes(tmp_path):
    """The command docs/distributed.md gives for CPU-only testing."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(json.dumps(_recipe().to_dict() | {"model": {"type": "gaussian_regression"}}))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(ROOT / "apps" / "train.py"), f"recipe={recipe}", f"run_dir={tmp_path / 'run'}"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    state = read_checkpoint(checkpoints / (checkpoints / "latest").read_text().strip()).state
    assert (state["processes"], state["step"]) == (2, 12)
