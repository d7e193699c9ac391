"""The MotionFlow particle and exchange-rate recipes and their baselines (issue 13): they validate
and build at the stated sizes, burn-in 10 runs the same model, and tiny runs go through the apps
(train, resume, evaluate, sample)."""

import json
from pathlib import Path

import pytest
import torch

from eddies.core import load_recipe
from eddies.tasks.exchange_rate import default_source
from tests.command_line import app

RECIPES = ["motionflow_particles", "motionflow_exchange", "lstm_realnvp_exchange", "random_walk_exchange"]
needs_rates = pytest.mark.skipif(default_source() is None, reason="../shared/data/exchange_rate is not available")


def app_json(name, *args):
    last = app(name, *args).stdout.strip().splitlines()[-1]
    return last if name == "sample" else json.loads(last)


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_validates_builds_and_forecasts(name, tmp_path):
    recipe = load_recipe(name)
    task = recipe.task.build(data_dir=tmp_path)  # data_spec needs no data
    model = recipe.model.build(data=task.data_spec())
    shapes = task.data_spec().shapes
    batch = {"x": 0.1 * torch.randn(2, *shapes["x"]), "y": 0.1 * torch.randn(2, *shapes["y"])}
    with torch.no_grad():
        draws = model.sample(batch, samples=3)
        assert draws.shape == (3, 2, *shapes["y"]) and torch.isfinite(draws).all()
        assert torch.isfinite(model.log_prob(batch)).all()
    assert recipe.train.max_steps is not None


@pytest.mark.parametrize("burn_in", [25, 10])
def test_the_particles_model_reads_at_most_ten_input_states_so_both_burn_ins_run(burn_in, tmp_path):
    recipe = load_recipe("motionflow_particles", [f"task.burn_in={burn_in}"])
    model = recipe.model.build(data=recipe.task.build(data_dir=tmp_path).data_spec())
    assert model.window + model.burn_in <= 10
    x = torch.randn(1, burn_in, 4, 3)
    with torch.no_grad():
        out = model.predict({"x": x}, samples=1, temperature=0.0)
        early = x.clone()
        early[:, : burn_in - 10] = 99.0  # states before the last ten change nothing
        torch.testing.assert_close(model.predict({"x": early}, samples=1, temperature=0.0), out)


TINY_MODEL = ["model.encoder.channels=[4]", "model.prior.hidden=4", "train.eval_every=2", "train.task_eval_every=1",
              "train.checkpoint_every=2", "train.threads=1", "train.batch_size=4", "train.eval_batch_size=4"]


@pytest.mark.slow
def test_particles_train_resume_evaluate_sample(tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    common = [f"run_dir={run}", f"data_dir={data}"]
    sizes = "task.sizes={train: 4, validation: 2, test: 2}"
    first = app_json("train", "recipe=motionflow_particles", *common, sizes, *TINY_MODEL, "train.max_steps=2")
    assert first["step"] == 2 and first["nonfinite_steps"] == 0 and first["val_mse_mean"] > 0
    more = app_json("train", *common, "resume=auto", "train.max_steps=4")
    assert more["step"] == 4
    metrics = app_json("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test")
    assert metrics["checkpoint_step"] == 4
    assert 0 < metrics["mse_burn_in_25_step_1"] and metrics["mse_mean"] == metrics["mse_burn_in_25_mean"]
    picture = Path(app_json("sample", f"checkpoint={run}", f"data_dir={data}", "n=2").splitlines()[-1])
    assert picture.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@needs_rates
@pytest.mark.parametrize("name, extra", [("motionflow_exchange", TINY_MODEL),
                                         ("lstm_realnvp_exchange", TINY_MODEL[2:])])
def test_exchange_train_evaluate_sample(name, extra, tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    common = [f"run_dir={run}", f"data_dir={data}"]
    first = app_json("train", f"recipe={name}", *common, *extra, "train.max_steps=2", "eval.samples=8",
                     "model.samples=8")
    assert first["step"] == 2 and first["nonfinite_steps"] == 0 and 0 < first["val_crps_sum"] < 10
    metrics = app_json("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test", "eval.samples=8")
    assert metrics["mse"] > 0 and metrics["crps_sum"] > 0
    picture = Path(app_json("sample", f"checkpoint={run}", f"data_dir={data}", "n=8").splitlines()[-1])
    assert picture.read_bytes()[:4] == b"\x89PNG"
