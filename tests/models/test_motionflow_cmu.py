"""The MotionFlow CMU mocap recipes (issue 12): they validate and build at the stated sizes, the
ablations are the main recipe with one switch, the paper-scale recipe takes a step on real
windows, and a tiny run goes through the apps (train, resume, evaluate, sample) on real mocap."""

import json
from pathlib import Path

import pytest
import torch

from eddies.core import load_recipe
from eddies.priors import ResidualLatent, StandardNormal
from eddies.tasks.cmu_mocap import default_source
from tests.command_line import app

RECIPES = ["motionflow_cmu", "motionflow_cmu_no_masks", "motionflow_cmu_normal_prior", "motionflow_cmu_paper"]
needs_data = pytest.mark.skipif(default_source() is None, reason="../shared/data/cmu_mocap is not available")


def tree(recipe):
    return {k: v for k, v in recipe.to_dict().items() if k not in ("name", "description")}


def random_batch(rows=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": 0.3 * torch.randn(rows, 25, 3, 24, generator=g), "y": 0.3 * torch.randn(rows, 25, 3, 24, generator=g)}


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_validates_builds_and_rolls_out(name, tmp_path):
    recipe = load_recipe(name)
    task = recipe.task.build(data_dir=tmp_path)  # data_spec needs no data
    model = recipe.model.build(data=task.data_spec())
    assert set(recipe.eval) <= {"samples", "temperature"}  # cmu_mocap's evaluate options
    with torch.no_grad():
        prediction = model.predict(random_batch(rows=1), samples=2)
    assert prediction.shape == (1, 25, 3, 24) and torch.isfinite(prediction).all()


def test_the_recipes_are_motionflow_at_the_stated_sizes():
    sizes = {}
    for name in ("motionflow_cmu", "motionflow_cmu_paper"):
        config = load_recipe(name).model.config
        layers = config.flow.config.layers
        coupling = layers[0].config.coupling.config
        sizes[name] = (len(layers), config.encoder.config.channels, coupling.net.config.channels, config.train_frames)
        assert config.encoder.name == "motionflow_conditioner" and config.encoder.config.masked
        assert (config.encoder.config.ordering1.curve, config.encoder.config.ordering2.curve) == ("raster", "column_major")
        assert config.prior.name == "residual_latent" and config.prior.config.dilations == [1, 2, 4]
        assert config.flow_layout == "c j -> j 1 c" and config.residual
        sizes[name] += (config.window, config.burn_in)
    assert sizes == {"motionflow_cmu": (4, [16, 8], [64], 25, 20, 5),
                     "motionflow_cmu_paper": (8, [32, 16], [256, 256], None, 25, 0)}
    paper = load_recipe("motionflow_cmu_paper").train
    assert (paper.batch_size, paper.optimizer.config.lr, paper.optimizer.config.weight_decay) == (32, 1e-4, 5e-4)
    data = load_recipe("motionflow_cmu").task.build().data_spec()
    assert load_recipe("motionflow_cmu_paper").model.build(data=data).flow.out_shape == (24, 1, 3)  # y_ch = 24


@pytest.mark.parametrize("name, switch", [
    ("motionflow_cmu_no_masks", ["model.encoder.masked=false"]),
    ("motionflow_cmu_normal_prior", ["model.prior=standard_normal"]),
])
def test_each_ablation_is_the_main_recipe_with_its_switch(name, switch):
    assert tree(load_recipe(name)) == tree(load_recipe("motionflow_cmu", switch))


def test_the_ablations_build_what_they_claim():
    data = load_recipe("motionflow_cmu").task.build().data_spec()
    plain = load_recipe("motionflow_cmu_no_masks").model.build(data=data)
    assert not any(type(m).__name__ == "LMConv" for m in plain.encoder.modules())
    assert isinstance(load_recipe("motionflow_cmu_normal_prior").model.build(data=data).prior, StandardNormal)
    assert isinstance(load_recipe("motionflow_cmu").model.build(data=data).prior, ResidualLatent)


@needs_data
def test_the_paper_recipe_takes_one_optimizer_step_on_real_windows(tmp_path):
    recipe = load_recipe("motionflow_cmu_paper", ["task.limit={train: 4, validation: 1, test: 1}"])
    task = recipe.task.build(data_dir=tmp_path)
    torch.manual_seed(0)
    model = recipe.model.build(data=task.data_spec())
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    items = task.dataset("train").__getitems__([0, 1, 2, 3])
    batch = {k: torch.stack([item[k] for item in items]) for k in ("x", "y")}
    loss = model.loss(batch)["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    with torch.no_grad():
        assert model.loss(batch)["loss"] < loss


def app_json(name, *args):
    """An app's last output line: the JSON of train.py and evaluate.py, the picture path of sample.py."""
    last = app(name, *args).stdout.strip().splitlines()[-1]
    return last if name == "sample" else json.loads(last)


TINY = ["task.limit={train: 8, validation: 1, test: 1}", "train.batch_size=4", "train.eval_batch_size=4",
        "train.eval_every=2", "train.task_eval_every=1", "train.checkpoint_every=2", "train.threads=1",
        "eval.samples=2", "model.samples=2", "model.encoder.channels=[4]", "model.prior.hidden=4",
        "model.train_frames=3"]


@pytest.mark.slow
@needs_data
def test_train_resume_evaluate_sample_on_real_mocap(tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    common = [f"run_dir={run}", f"data_dir={data}"]
    first = app_json("train", "recipe=motionflow_cmu", *common, *TINY, "train.max_steps=2")
    assert first["step"] == 2 and first["nonfinite_steps"] == 0
    for protocol in ("motionflow", "ltd8"):
        assert 0 < first[f"val_mpjpe_{protocol}_mean_1000ms"] < 2000
    more = app_json("train", *common, "resume=auto", "train.max_steps=4")
    assert more["step"] == 4
    metrics = app_json("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test", "eval.temperature=0")
    assert metrics["split"] == "test" and metrics["checkpoint_step"] == 4 and metrics["eval"]["temperature"] == 0
    for action in ("basketball", "walking"):
        assert metrics[f"mpjpe_motionflow_{action}_80ms"] < metrics[f"mpjpe_motionflow_{action}_1000ms"]
        assert 0 < metrics[f"angle_error_ltd8_{action}_400ms"] < 3.2
    picture = Path(app_json("sample", f"checkpoint={run}", f"data_dir={data}", "n=2").splitlines()[-1])
    assert picture.read_bytes()[:4] == b"\x89PNG"
