"""The Weizmann Horse recipes (c-Glow, MotionFlow, FCN; issue 11): they validate and build, x
reaches every conditional layer, the dead-conditioning ablation is dead, the FCN baseline is a
correct BCE segmenter, and a tiny run goes through the apps on real horse images."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from eddies.core import DataSpec, RecipeError, ShapeError, build, load_recipe
from eddies.flows.actnorm import CondActNorm
from eddies.flows.coupling import Coupling
from eddies.flows.invconv import CondInvConv1x1
from eddies.tasks.weizmann_horse import default_source, predicted_mask

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ["cglow_horse", "cglow_horse_paper", "cglow_horse_dead_conditioning", "motionflow_horse", "fcn_horse"]
FLOWS = ["cglow_horse", "cglow_horse_paper", "cglow_horse_dead_conditioning", "motionflow_horse"]
DEAD = ["model.flow.step.actnorm.net.zero_init_all=true", "model.flow.step.invconv.net.zero_init_all=true"]
needs_data = pytest.mark.skipif(default_source() is None, reason="../shared/data/weizmann_horse is not available")
ENV = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1"}


def spec(size):
    shape = (3, size, size)
    return DataSpec(shapes={"y": shape, "x": shape}, target="y", condition="x")


def random_batch(size, rows=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(rows, size, size, generator=g) > 0.5).long()
    y = mask[:, None].float().expand(-1, 3, -1, -1) - 0.5 + torch.rand(rows, 3, size, size, generator=g) - 0.5
    return {"x": torch.rand(rows, 3, size, size, generator=g), "y": y, "mask": mask}


def trained_a_little(model, batch, steps=2, lr=1e-5):
    """A few Adam steps, so that the zero-started last layers are no longer zero."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.loss(batch)["loss"]
        loss.backward()
        assert torch.isfinite(loss)
        optimizer.step()
    return model


def x_gradients(model, batch):
    """For each conditional layer of the flow: |d(output)/dx| summed, the layer run on a fixed
    random input with the model's context h = encoder(x) (or x)."""
    x = batch["x"].clone().requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    found = []
    for layer in model.flow.modules():
        if isinstance(layer, CondActNorm | CondInvConv1x1 | Coupling) and layer.context_shape is not None:
            h = model.encode({"x": x}, len(x))
            v = torch.randn(len(x), *layer.shape, generator=g)
            z, logdet = layer(v, h)
            weights = torch.randn(z.shape, generator=g)
            (grad,) = torch.autograd.grad((z * weights).sum() + logdet.sum(), x)
            found.append((type(layer).__name__, grad.abs().sum().item()))
    return found


# the recipes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_validates_builds_and_predicts(name, tmp_path):
    recipe = load_recipe(name)
    task = recipe.task.build(data_dir=tmp_path)  # data_spec needs no data
    model = recipe.model.build(data=task.data_spec())
    assert recipe.train.monitor.metric.removeprefix("val_") in task.metric_directions()
    assert set(recipe.eval) <= {"samples", "temperature"}  # weizmann_horse's evaluate options
    batch = random_batch(32, rows=1)
    with torch.no_grad():
        prediction = model.predict(batch, samples=2)
    assert prediction.shape == (1, 3, 32, 32) and torch.isfinite(prediction).all()
    assert predicted_mask(prediction).shape == (1, 32, 32)


def test_flow_recipes_are_c_glow_at_the_stated_sizes():
    paper, reduced = load_recipe("cglow_horse_paper"), load_recipe("cglow_horse")
    for recipe, k, n_c, n_w, hidden, batch, lr in ((paper, 8, 64, 128, 256, 2, 2e-4), (reduced, 4, 16, 32, 64, 16, 5e-4)):
        flow = recipe.model.config.flow.config
        step = flow.step.config
        assert (flow.levels, flow.steps) == (3, k)
        for part in (step.actnorm, step.invconv):
            assert part.config.net.name == "cglow_vector"
            assert (part.config.net.config.channels, part.config.net.config.width) == (n_c, n_w)
        assert step.coupling.name == "cond_affine_coupling"
        assert step.coupling.config.net.config.channels == [hidden, hidden]
        assert step.coupling.config.context_net.name == "cglow_features"
        assert recipe.train.batch_size == batch and recipe.train.optimizer.config.lr == lr
        assert recipe.model.config.samples == 10 and recipe.eval["samples"] == 10
    assert reduced.train.grad_clip is not None and reduced.train.early_stopping is not None
    motion = load_recipe("motionflow_horse")
    assert motion.model.config.encoder.name == "motionflow_conditioner"


def test_the_dead_conditioning_recipe_is_cglow_horse_with_the_switch():
    def tree(recipe):
        return {k: v for k, v in recipe.to_dict().items() if k not in ("name", "description")}

    assert tree(load_recipe("cglow_horse_dead_conditioning")) == tree(load_recipe("cglow_horse", DEAD))


@needs_data
def test_the_paper_recipe_takes_one_optimizer_step_on_real_images(tmp_path):
    recipe = load_recipe("cglow_horse_paper", ["task.limit={train: 2, validation: 1, test: 1}"])
    task = recipe.task.build(data_dir=tmp_path)
    torch.manual_seed(0)
    model = recipe.model.build(data=task.data_spec())
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    schedule = recipe.train.scheduler.build(optimizer=optimizer, total_steps=recipe.train.max_steps)
    data = task.dataset("train")
    batch = {k: torch.stack([item[k] for item in data.__getitems__([0, 1])]) for k in ("x", "y", "mask")}
    assert len(batch["x"]) == recipe.train.batch_size == 2
    before = [p.detach().clone() for p in model.parameters()]
    loss = model.loss(batch)["loss"]
    loss.backward()
    optimizer.step()
    schedule.step()
    assert torch.isfinite(loss)
    # every parameter with a gradient moved (behind a zero-started last layer there is none yet)
    moved = [not torch.equal(old, p) for old, p in zip(before, model.parameters(), strict=True)
             if p.grad is not None and p.grad.any()]
    assert moved and all(moved)
    with torch.no_grad():
        assert model.loss(batch)["loss"] < loss  # the first, warm-up step already lowers this batch's NLL
    assert model.loss(batch)["loss"] < loss  # one step of Adam at 2e-4 already lowers this batch's NLL


# x reaches every conditional layer -------------------------------------------------------------
@pytest.mark.parametrize("name", ["cglow_horse", "cglow_horse_paper", "motionflow_horse"])
def test_every_conditional_layer_depends_on_x(name):
    torch.manual_seed(0)
    model = load_recipe(name).model.build(data=spec(16))
    batch = random_batch(16)
    gradients = x_gradients(model, batch)
    kinds = {kind for kind, _ in gradients}
    assert kinds == {"CondActNorm", "CondInvConv1x1", "Coupling"}
    assert len(gradients) == 3 * 3 * load_recipe(name).model.config.flow.config.steps  # 3 layers x L x K
    # zero-started last layers: an untrained layer ignores x (and is the identity)
    assert all(g == 0 for _, g in gradients)
    trained_a_little(model, batch)
    assert all(g > 0 for _, g in x_gradients(model, batch)), x_gradients(model, batch)


def test_the_dead_conditioning_ablation_cuts_x_off_the_actnorm_and_1x1_layers():
    torch.manual_seed(0)
    model = load_recipe("cglow_horse_dead_conditioning").model.build(data=spec(16))
    batch = random_batch(16)
    trained_a_little(model, batch, steps=5)
    for kind, g in x_gradients(model, batch):
        assert (g == 0) if kind != "Coupling" else (g > 0), (kind, g)
    # the parameters are learned constants: the same for two different images
    layer = next(m for m in model.flow.modules() if isinstance(m, CondActNorm))
    x = torch.rand(2, 3, 16, 16)
    out = layer.net(x)
    assert torch.equal(out[0], out[1]) and out.abs().sum() > 0  # the last bias did learn


@pytest.mark.parametrize("zero_init_all", [False, True])
def test_cglow_vector_zero_init_all_never_depends_on_x(zero_init_all):
    torch.manual_seed(0)
    net = build({"type": "cglow_vector", "zero_init_all": zero_init_all},
                "conditioners", in_shape=(3, 16, 16), out_shape=(6,))
    x = torch.rand(8, 3, 16, 16)
    target = x.mean(dim=(2, 3)).repeat(1, 2)  # an x-dependent target
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        F.mse_loss(net(x), target).backward()
        optimizer.step()
    probe = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((net(probe) * torch.randn(8, 6)).sum(), probe)
    assert net.last.bias.abs().sum() > 0  # trained
    if zero_init_all:
        assert grad.abs().sum() == 0
        assert all(p.abs().sum() == 0 for n, p in net.named_parameters() if n != "last.bias")
    else:
        assert grad.abs().sum() > 0


def test_predict_encodes_each_image_once():
    model = load_recipe("motionflow_horse").model.build(data=spec(16))
    calls = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        model.predict(random_batch(16, rows=3), samples=5)
    assert calls == [3]


# the FCN baseline -------------------------------------------------------------------------------
def test_fcn_segmenter_loss_is_the_mean_bce_and_predict_follows_the_task_rule():
    torch.manual_seed(0)
    model = build({"type": "fcn_segmenter", "channels": [4, 8]}, "models", data=spec(8))
    batch = random_batch(8, rows=3)
    out = model.loss(batch)
    assert "nll" not in out and set(out) == {"loss", "bce"}
    p = model.logits(batch).sigmoid()
    m = batch["mask"].float()
    by_hand = -(m * p.log() + (1 - m) * (1 - p).log()).mean()
    assert torch.allclose(out["loss"], by_hand, atol=1e-6)
    prediction = model.predict(batch, samples=7, temperature=0.3)
    assert prediction.shape == (3, 3, 8, 8)
    assert torch.equal(prediction, (p - 0.5)[:, None].expand(-1, 3, -1, -1))
    assert torch.equal(predicted_mask(prediction), (p > 0.5).long())
    with pytest.raises(NotImplementedError, match="deterministic"):
        model.sample(batch)
    with pytest.raises(NotImplementedError):
        model.log_prob(batch)
    with pytest.raises(ValueError, match="samples"):
        model.predict(batch, samples=0)


def test_fcn_segmenter_learns_a_mask_that_needs_context():
    """The mask is a square whose position is set by a colour patch elsewhere in the image: a
    per-pixel classifier cannot solve it, the fused coarse scores can."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    rows, size = 64, 16
    corner = torch.randint(0, 2, (rows,), generator=g)
    x = torch.rand(rows, 3, size, size, generator=g) * 0.1
    mask = torch.zeros(rows, size, size, dtype=torch.long)
    for i, c in enumerate(corner.tolist()):
        x[i, c, :2, :2] = 1.0  # a red or green marker in the top-left corner
        mask[i, 8:, :8] = c == 0
        mask[i, 8:, 8:] = c == 1
    batch = {"x": x, "y": mask[:, None].float().expand(-1, 3, -1, -1) - 0.5, "mask": mask}
    model = build({"type": "fcn_segmenter", "channels": [8, 16, 16]}, "models", data=spec(size))
    start = model.loss(batch)["loss"].item()
    trained_a_little(model, batch, steps=150, lr=3e-3)
    with torch.no_grad():
        accuracy = (predicted_mask(model.predict(batch)) == mask).float().mean().item()
    assert model.loss(batch)["loss"].item() < 0.3 * start and accuracy > 0.97


def test_fcn_segmenter_errors_name_the_shapes():
    with pytest.raises(RecipeError, match=r"divisible by 4.*\(3, 6, 6\)"):
        build({"type": "fcn_segmenter", "channels": [2, 2, 2]}, "models", data=spec(6))
    with pytest.raises(RecipeError, match="same H, W"):
        build("fcn_segmenter", "models", data=DataSpec(shapes={"y": (3, 8, 8), "x": (3, 4, 4)}))
    model = build({"type": "fcn_segmenter", "channels": [2]}, "models", data=spec(4))
    batch = random_batch(4)
    with pytest.raises(ShapeError, match=r"labels 'mask'.*the batch holds \['x', 'y'\]"):
        model.loss({"x": batch["x"], "y": batch["y"]})
    with pytest.raises(ShapeError, match="condition 'x' must have shape"):
        model.predict({"x": batch["x"][:, :2]})


# end to end through the apps on real images -------------------------------------------------------
def app(name, *args):
    proc = subprocess.run([sys.executable, str(ROOT / "apps" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]) if name != "sample" else proc.stdout.strip()


TINY = ["task.limit={train: 4, validation: 2, test: 2}", "train.batch_size=2", "train.eval_batch_size=2",
        "train.eval_every=2", "train.checkpoint_every=2", "train.threads=1", "eval.samples=2"]
SMALL_FLOW = ["model.flow.steps=1", "model.samples=2"]


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name, extra", [("cglow_horse", SMALL_FLOW), ("motionflow_horse", SMALL_FLOW),
                                         ("fcn_horse", ["model.channels=[4, 8]"])])
def test_train_resume_evaluate_sample_on_real_horses(name, extra, tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    common = [f"run_dir={run}", f"data_dir={data}"]
    first = app("train", f"recipe={name}", *common, *TINY, *extra, "train.max_steps=4")
    assert first["step"] == 4
    for key in ("val_iou_class_mean_batch10", "val_iou_class_mean_pooled", "val_iou_foreground_pooled"):
        assert 0 <= first[key] <= 1
    assert math.isnan(first["val_nll_nats"]) == (name == "fcn_horse")  # the FCN has no density
    more = app("train", *common, "resume=auto", "train.max_steps=6")
    assert more["step"] == 6
    metrics = app("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test")
    assert metrics["split"] == "test" and metrics["checkpoint_step"] == 6
    assert 0 <= metrics["iou_class_mean_batch10"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    one = app("evaluate", f"checkpoint={run}", f"data_dir={data}", "eval.samples=1", f"out={tmp_path / 'm1.json'}")
    assert one["eval"]["samples"] == 1 and json.loads((tmp_path / "m1.json").read_text())["eval"] == one["eval"]
    picture = Path(app("sample", f"checkpoint={run}", f"data_dir={data}", "n=2").splitlines()[-1])
    assert picture.read_bytes()[:4] == b"\x89PNG"

