"""The Python-first path (eddies.engine.fit): fit() on one's own tensors, load_model() without the
task, and built components or Specs where a spec is expected (eddies.core.objects)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from eddies.core import (
    CheckpointError,
    DataError,
    DataSpec,
    RecipeError,
    build,
    get_registry,
    register,
    validate_spec,
)
from eddies.engine import fit, load_model
from eddies.engine.checkpoint import data_spec_from_state, find_checkpoint, state_digest
from eddies.tasks.cache import file_sha256
from eddies.tasks.synthetic import SyntheticRegression

A = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]])
B = torch.tensor([0.5, -1.0])
SIGMA = 0.3
QUICK = {"batch_size": 200, "threads": 1, "samples": False, "log_every": 50}


def gaussian(n, seed):
    """x ~ N(0, I_3), y | x ~ N(A x + b, SIGMA^2 I_2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return {"x": x, "y": x @ A.T + B + SIGMA * torch.randn(n, 2, generator=g)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """gaussian_regression fitted on 4000 + 4000 draws of the known Gaussian."""
    run_dir = tmp_path_factory.mktemp("fit") / "run"
    data = {"train": gaussian(4000, 0), "validation": gaussian(4000, 1)}
    run = fit("gaussian_regression", data, run_dir, epochs=15, optimizer={"type": "adam", "lr": 0.03}, **QUICK)
    return run, data


def test_fit_learns_a_known_gaussian_down_to_its_entropy(trained):
    run, data = trained
    k = 2
    entropy = 0.5 * k * math.log(2 * math.pi * math.e * SIGMA**2)  # h(y | x) of the true model, nats
    val = data["validation"]
    oracle = -torch.distributions.Normal(val["x"] @ A.T + B, SIGMA).log_prob(val["y"]).sum(-1).double()
    # the oracle's NLL on these 4000 draws estimates the entropy (sd sqrt(k / 2 / 4000) = 0.016)
    assert abs(float(oracle.mean()) - entropy) < 3 * math.sqrt(k / 2 / len(oracle))
    assert run.metrics["val_nll"] == pytest.approx(float(oracle.mean()), abs=0.02)  # learned ~ oracle
    assert run.metrics["val_mean_nll"] == pytest.approx(run.metrics["val_nll"], rel=1e-6)  # the task's, the same
    assert run.metrics["val_mse"] == pytest.approx(SIGMA**2, rel=0.05)  # predict = the conditional mean
    assert run.best_checkpoint is not None and (run.best_checkpoint / "state.json").is_file()


def test_the_recipe_records_the_tensors_file_and_load_model_reproduces_the_model(trained):
    run, data = trained
    task = run.recipe.task.to_dict()
    file = run.run_dir.resolve() / "data" / "tensors.safetensors"
    assert (task["type"], task["file"], task["sha256"]) == ("tensors@1", str(file), file_sha256(file))
    state = json.loads((find_checkpoint(run.run_dir) / "state.json").read_text())
    assert state["recipe"]["task"] == task  # the checkpoint records where the data are
    model = load_model(run.run_dir)
    assert not model.training
    batch = {k: v[:64] for k, v in data["validation"].items()}
    with torch.no_grad():
        assert torch.equal(model.log_prob(batch), run.model.log_prob(batch))
        assert torch.equal(model.predict(batch), run.model.predict(batch))


def _with_data_spec(src, dst, spec):
    """A copy of checkpoint ``src`` whose state.json records ``spec`` (None: none; checksum recomputed)."""
    shutil.copytree(src, dst)
    state = json.loads((dst / "state.json").read_text())
    state.pop("data_spec", None)
    if spec is not None:
        state["data_spec"] = spec
    state["sha256"] = state_digest(state)
    (dst / "state.json").write_text(json.dumps(state))
    return dst


def _private_run(tmp_path):
    """A run of a task registered only inside this function (the registry forgets it on return)."""
    with get_registry("tasks").scoped():
        entry = get_registry("tasks").get("synthetic_regression")
        register("tasks", "private_regression", config=entry.config, summary="gone after the test")(SyntheticRegression)
        run = fit("gaussian_regression", {"type": "private_regression", "n_train": 200, "n_validation": 40},
                  tmp_path / "run", epochs=1, **{**QUICK, "batch_size": 50})
    assert "private_regression" not in get_registry("tasks").names()
    return run


def test_a_checkpoint_recording_its_data_spec_loads_without_its_task(tmp_path):
    run = _private_run(tmp_path)
    saved = find_checkpoint(run.run_dir)
    recorded = {"shapes": {"x": [4], "y": [2]}, "target": "y", "condition": "x"}
    model = load_model(_with_data_spec(saved, tmp_path / "ckpt", recorded))
    assert model.data == DataSpec({"x": (4,), "y": (2,)})
    batch = {"x": torch.randn(5, 4), "y": torch.randn(5, 2)}
    with torch.no_grad():
        assert torch.equal(model.log_prob(batch), run.model.log_prob(batch))
    # without the data spec (an earlier trainer's checkpoint) the task would have to give it: not registered
    with pytest.raises(CheckpointError, match=r"not available: tasks/private_regression@1"):
        load_model(_with_data_spec(saved, tmp_path / "old", None))
    bad = _with_data_spec(saved, tmp_path / "bad", {"shapes": {"x": [4]}, "target": "y", "condition": "x"})
    with pytest.raises(CheckpointError, match="data_spec is malformed"):
        load_model(bad)


def test_the_trainer_records_the_data_spec_so_no_task_is_needed(tmp_path):
    run = _private_run(tmp_path)
    state = json.loads((find_checkpoint(run.run_dir) / "state.json").read_text())
    assert data_spec_from_state(state, run.run_dir) == DataSpec({"x": (4,), "y": (2,)})
    assert load_model(run.run_dir).data == DataSpec({"x": (4,), "y": (2,)})


def test_a_checkpoint_without_a_data_spec_loads_through_its_registered_task(trained, tmp_path):
    run, data = trained
    old = _with_data_spec(find_checkpoint(run.run_dir), tmp_path / "old", None)  # as an earlier trainer wrote it
    model = load_model(old)  # the tensors task reads its file for the shapes
    batch = {k: v[:8] for k, v in data["validation"].items()}
    with torch.no_grad():
        assert torch.equal(model.log_prob(batch), run.model.log_prob(batch))


def test_fit_takes_a_task_spec_and_checks_the_whole_recipe_first(tmp_path):
    run = fit("gaussian_regression", {"type": "synthetic_regression", "n_train": 100}, tmp_path / "a",
              epochs=1, **{**QUICK, "batch_size": 50})
    assert run.metrics["step"] == 2 and "val_oracle_nll" in run.metrics
    with pytest.raises(RecipeError) as err:
        fit("gaussian_regression", gaussian(100, 0), tmp_path / "b", epoch=1)
    assert err.value.path == "train.epoch" and "Did you mean 'epochs'" in str(err.value)
    assert not (tmp_path / "b").exists()  # nothing written before the recipe validates
    with pytest.raises(RecipeError, match="target and condition name the roles of tensors"):
        fit("gaussian_regression", {"type": "synthetic_regression"}, tmp_path / "c", target="z")
    with pytest.raises(RecipeError) as err:
        fit({"type": "gaussian_regresion"}, gaussian(100, 0), tmp_path / "d")
    assert err.value.path == "model.type"


def test_fit_resumes_a_run_on_the_same_tensors_and_refuses_others(tmp_path):
    data = gaussian(200, 4)
    first = fit("gaussian_regression", data, tmp_path / "run", epochs=1, **{**QUICK, "batch_size": 60})
    file = tmp_path / "run" / "data" / "tensors.safetensors"
    digest = file_sha256(file)
    again = fit("gaussian_regression", data, tmp_path / "run", epochs=2, resume="auto", **{**QUICK, "batch_size": 60})
    assert (first.metrics["step"], again.metrics["step"]) == (3, 6)
    other = {k: v + 1 for k, v in data.items()}
    with pytest.raises(DataError, match="exists and holds other tensors"):
        fit("gaussian_regression", other, tmp_path / "run", epochs=3, resume="auto", **QUICK)
    assert file_sha256(file) == digest  # the run's data are left as they were


def test_a_datasets_object_is_pointed_to_the_hf_dataset_task(tmp_path):
    import datasets

    table = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"x": [[1.0]], "y": [[2.0]]})})
    with pytest.raises(RecipeError, match=r"save it with save_to_disk\(FOLDER\) and pass \{'type': 'hf_dataset'"):
        fit("gaussian_regression", table, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_fit_without_x_is_unconditional(tmp_path):
    with pytest.raises(RecipeError, match="needs a vector condition"):  # gaussian_regression needs one
        fit("gaussian_regression", {"y": torch.randn(100, 2)}, tmp_path / "run", epochs=1, **{**QUICK, "batch_size": 10})


# ------------------------------------------------------------------------------------------
# Python objects where a spec is expected
STEP = {"type": "glow_step", "actnorm": "cond_actnorm",
        "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [16]}}}


def test_a_built_model_is_trained_in_place_and_recorded_by_its_spec(tmp_path):
    data = gaussian(400, 2)
    model = build("gaussian_regression", "models", data=DataSpec({"x": (3,), "y": (2,)}))
    run = fit(model, data, tmp_path / "run", epochs=2, **{**QUICK, "batch_size": 100})
    assert run.model is model  # that very object was trained
    assert run.recipe.model.to_dict() == {"type": "gaussian_regression@1"}
    batch = {k: v[:16] for k, v in data.items()}
    with torch.no_grad():
        assert torch.equal(load_model(run.run_dir).log_prob(batch), model.log_prob(batch))


def test_a_built_flow_and_a_spec_stand_in_nested_specs(tmp_path):
    flow = build({"type": "chain", "layers": [STEP, "reverse", STEP]}, "flows", shape=(2,), context_shape=(3,))
    prior = validate_spec("standard_normal", "priors")
    data = gaussian(400, 3)
    run = fit({"type": "conditional_flow", "flow": flow, "prior": prior, "samples": 4}, data, tmp_path / "run",
              epochs=1, **{**QUICK, "batch_size": 100})
    assert run.model.flow is flow
    recorded = run.recipe.model.to_dict()
    assert recorded["flow"]["type"] == "chain@1" and recorded["flow"]["layers"][1] == {"type": "reverse@1"}
    batch = {k: v[:16] for k, v in data.items()}
    with torch.no_grad():
        assert torch.equal(load_model(run.run_dir).log_prob(batch), run.model.log_prob(batch))


def test_objects_that_cannot_stand_in_for_a_spec_are_one_clear_error():
    flow = build({"type": "chain", "layers": [STEP]}, "flows", shape=(2,), context_shape=(3,))
    with pytest.raises(RecipeError) as err:  # a flow where a model is expected
        validate_spec(flow, "models")
    assert "expected a models component, got a built flows component (chain@1)" in str(err.value)
    with pytest.raises(RecipeError, match=r"^prior: expected a priors spec, got a flows spec \(reverse@1\)"):
        validate_spec({"type": "conditional_flow", "flow": flow, "prior": validate_spec("reverse", "flows")}, "models")
    with pytest.raises(RecipeError, match="a Linear object that eddies did not build"):
        validate_spec(torch.nn.Linear(2, 2), "models")
    with pytest.raises(RecipeError, match=r"expected a models spec \(a mapping with 'type'\), got int 3"):
        validate_spec(3, "models")
    optimizer = build({"type": "adam"}, "optimizers", params=torch.nn.Linear(2, 2).parameters())
    with pytest.raises(RecipeError, match="optimizers: a component of this kind must be given as a spec"):
        fit("gaussian_regression", gaussian(100, 0), optimizer=optimizer)  # it would not hold the model's parameters
    spec = validate_spec({"type": "conditional_flow", "flow": flow}, "models")
    assert spec.build(data=DataSpec({"x": [3], "y": [2]})).flow is flow  # lists or tuples: the same shapes
    with pytest.raises(RecipeError) as err:  # built for a 2-vector target, placed on a 5-vector one
        spec.build(data=DataSpec({"x": (3,), "y": (5,)}))
    assert err.value.path == "model.flow" and "was built with shape=(2,), but is placed where shape=(5,)" in str(err.value)


def test_the_objects_module_examples_run():
    import doctest

    import eddies.core.objects

    result = doctest.testmod(eddies.core.objects, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
