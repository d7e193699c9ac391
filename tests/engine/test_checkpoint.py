"""Checkpoint files: atomic layout, verification, provenance and the errors for bad checkpoints."""

import json
import os

import pytest
import torch

from eddies.core import CheckpointError, get_registry, register
from eddies.engine import Trainer, find_checkpoint, load_checkpoint, read_checkpoint
from eddies.engine.checkpoint import prune, save_checkpoint, write_pointer
from eddies.models import GaussianRegression
from tests.engine.conftest import tiny_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    result = Trainer(tiny_recipe({"epochs": 3, "keep_checkpoints": 2}), run).fit()
    return run, result


def test_layout_pointers_and_pruning(trained):
    run, result = trained
    folder = run / "checkpoints"
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    best = (folder / "best").read_text().strip()
    kept = {"step-000012", "step-000018", best}  # the 2 newest plus the best
    assert set(names) == kept | {"latest", "best"}
    assert (folder / "latest").read_text().strip() == "step-000018"
    assert best == f"step-{result['best_step']:06d}"
    for name in kept:
        assert {p.name for p in (folder / name).iterdir()} == {
            "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"}
    assert not list(folder.glob(".tmp-*"))


def test_state_records_recipe_components_and_versions(trained):
    run, _ = trained
    state = json.loads((run / "checkpoints" / "step-000018" / "state.json").read_text())
    assert state["step"] == 18 and state["epoch"] == 3 and state["step_in_epoch"] == 0
    assert state["recipe"]["model"]["type"] == "gaussian_regression@1"
    refs = {(c["kind"], c["name"], c["version"], c["distribution"]) for c in state["components"]}
    assert ("tasks", "synthetic_regression", 1, "eddies-tasks") in refs
    assert ("optimizers", "adam", 1, "eddies-core") in refs
    assert state["versions"]["torch"] == torch.__version__
    assert set(state["files"]) == {"model.safetensors", "optimizer.safetensors", "rng.safetensors"}


def test_load_checkpoint_rebuilds_the_trained_model(trained):
    run, result = trained
    recipe, model, task, state = load_checkpoint(run)  # run dir -> latest
    assert state["step"] == 18 and recipe.name == "tiny"
    task.prepare()
    val = task.dataset("validation")[:]
    with torch.no_grad():
        nll = -model.log_prob(val).double().mean().item()
    assert nll == pytest.approx(result["val_nll"], rel=1e-6)  # independent recomputation
    assert not model.training


def test_find_checkpoint_accepts_pointers_folders_and_run_dirs(trained):
    run, _ = trained
    latest = run / "checkpoints" / "step-000018"
    for path in (run, run / "checkpoints", run / "checkpoints" / "latest", latest):
        assert find_checkpoint(path) == latest
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        find_checkpoint(run / "metrics")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "state"])
def test_corrupted_checkpoints_are_clear_errors(trained, tmp_path, damage):
    run, _ = trained
    src = run / "checkpoints" / "step-000018"
    ckpt = tmp_path / "step-000018"
    ckpt.mkdir()
    for f in src.iterdir():
        (ckpt / f.name).write_bytes(f.read_bytes())
    target = ckpt / "model.safetensors"
    data = bytearray(target.read_bytes())
    if damage == "flip":
        data[-3] ^= 0xFF
        target.write_bytes(bytes(data))
        match = r"model.safetensors is corrupted"
    elif damage == "truncate":
        target.write_bytes(bytes(data[: len(data) // 2]))
        match = r"model.safetensors is corrupted"
    elif damage == "delete":
        target.unlink()
        match = r"is missing model.safetensors"
    else:
        (ckpt / "state.json").write_text('{"format": 1, "step": ')
        match = r"state.json is corrupted"
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(ckpt)


def test_missing_component_or_version_is_a_clear_error(tmp_path):
    models = get_registry("models")
    with models.scoped():
        register("models", "gaussian_regression", version=2, summary="v2 (test)")(GaussianRegression)
        recipe = tiny_recipe({"epochs": 1}, model={"type": "gaussian_regression@2"})
        Trainer(recipe, tmp_path).fit()
        assert load_checkpoint(tmp_path)[3]["step"] == 6
    # outside the scope only version 1 exists
    with pytest.raises(CheckpointError, match=r"models/gaussian_regression@2 .*has no version 2"):
        load_checkpoint(tmp_path)
    with models.scoped():
        models.unregister("gaussian_regression")
        with pytest.raises(CheckpointError, match=r"unknown models component 'gaussian_regression'"):
            load_checkpoint(tmp_path)


def test_save_is_atomic_and_replaces(tmp_path):
    tensors = {"w": torch.arange(4.0)}
    state = {"step": 1}
    first = save_checkpoint(tmp_path, "step-000001", tensors, {}, {}, state)
    second = save_checkpoint(tmp_path, "step-000001", {"w": torch.zeros(4)}, {}, {}, state)
    assert first == second and torch.equal(read_checkpoint(second).model["w"], torch.zeros(4))
    assert sorted(os.listdir(tmp_path)) == ["step-000001"]  # no temporary folder left behind
    write_pointer(tmp_path, "latest", "step-000001")
    for step in (2, 3, 4):
        save_checkpoint(tmp_path, f"step-{step:06d}", tensors, {}, {}, {"step": step})
    prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-000001", "step-000003", "step-000004"]
