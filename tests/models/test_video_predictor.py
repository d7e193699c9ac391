"""The ``video_predictor`` model kind (MotionRNN / PredRNN, issue 15): patches, scheduled sampling,
causality, the loss, generation, the paper/authors switch, the recipes and a tiny run through the
apps on moving MNIST."""

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import eddies.models  # noqa: F401  (registers the kinds)
from eddies.core import MODELS, TASKS, DataSpec, RecipeError, build, load_recipe
from eddies.models.video_predictor import VideoPredictor, patchify, unpatchify
from tests.command_line import app

RECIPES = ["motionrnn_mmnist", "predrnn_mmnist", "motionrnn_mmnist_authors", "motionrnn_mmnist_paper"]
has_task = pytest.mark.skipif("moving_mnist" not in {e.name for e in TASKS.entries()},
                              reason="the moving_mnist task is not registered yet")


def spec(k=3, t=4, size=8, channels=1):
    return DataSpec({"x": (k, channels, size, size), "y": (t, channels, size, size)}, target="y", condition="x")


def tiny(data=None, motion=True, variant="paper", **kwargs):
    rnn = {"type": "predrnn", "hidden": 4, "num_layers": 2, "filter_size": 3, "motion": motion, "variant": variant}
    return build({"type": "video_predictor", "rnn": rnn, "patch": 2, **kwargs}, "models", data=data or spec())


def frames(rows=2, k=3, t=4, size=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(rows, k, 1, size, size, generator=g, dtype=dtype),
            "y": torch.rand(rows, t, 1, size, size, generator=g, dtype=dtype)}


# patches -----------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(p=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3), c=st.integers(1, 3), lead=st.integers(0, 2))
def test_patchify_and_unpatchify_round_trip_exactly(p, h, w, c, lead):
    x = torch.randn(*[2] * lead, c, h * p, w * p)
    patches = patchify(x, p)
    assert patches.shape == (*[2] * lead, c * p * p, h, w)
    assert torch.equal(unpatchify(patches, p), x)
    assert torch.equal(patchify(unpatchify(patches, p), p), patches)


def test_patch_channels_are_positions_inside_the_patch():
    x = torch.randn(3, 8, 12)  # C = 3
    patches = patchify(x, 4)
    i, j, c, row, col = 1, 3, 2, 1, 2
    assert patches[(i * 4 + j) * 3 + c, row, col] == x[c, row * 4 + i, col * 4 + j]


# scheduled sampling ------------------------------------------------------------------------
def test_the_schedule_falls_linearly_with_the_training_progress():
    model = tiny(sampling_decay=0.6)
    model.train()
    for step, expected in [(0, 1.0), (30, 0.5), (45, 0.25), (60, 0.0), (100, 0.0)]:
        model.set_progress(step, 100)
        assert model.teacher_forcing() == pytest.approx(expected)
    model.set_progress(30, 100)
    model.eval()
    assert model.teacher_forcing() == 0.0
    bounded = tiny(sampling_start=0.8, sampling_end=0.2, sampling_decay=0.5)
    bounded.set_progress(25, 100)
    assert bounded.teacher_forcing() == pytest.approx(0.5)


def fed_true_frames(model, batch):
    """Over the target steps of one loss call: how many of the inputs the rnn read were the true
    frame (exactly), and how many steps there were."""
    seen = []
    step = model.rnn.step
    model.rnn.step = lambda x, state: (seen.append(x.detach().clone()), step(x, state))[1]
    try:
        model.loss(batch)
    finally:
        del model.rnn.step
    k = model.input_frames
    true = patchify(torch.cat([batch["x"], batch["y"]], 1), model.patch)
    hits = [(seen[t] == true[:, t]).flatten(1).all(1) for t in range(k, len(seen))]
    return int(torch.stack(hits).sum()), len(hits) * batch["x"].shape[0]


def test_scheduled_sampling_feeds_true_frames_with_the_scheduled_probability():
    torch.manual_seed(0)
    model = tiny(data=spec(k=2, t=9, size=4), motion=False, sampling_decay=0.5)
    model.train()
    model.set_progress(35, 100)  # ε = 1 - 0.35 / 0.5 = 0.3
    assert model.teacher_forcing() == pytest.approx(0.3)
    hits, draws = fed_true_frames(model, frames(rows=250, k=2, t=9, size=4))
    assert draws == 2000 and abs(hits / draws - 0.3) < 0.035  # 3.4 standard deviations
    model.set_progress(0, 100)  # ε = 1: teacher forcing
    assert fed_true_frames(model, frames(rows=4, k=2, t=9, size=4)) == (32, 32)
    model.set_progress(100, 100)  # ε = 0
    assert fed_true_frames(model, frames(rows=4, k=2, t=9, size=4))[0] == 0


def test_no_true_target_frame_is_read_at_test():
    torch.manual_seed(0)
    model = tiny()
    model.set_progress(0, 100)  # training would teacher-force everything ...
    model.eval()  # ... but evaluation does not
    assert fed_true_frames(model, frames())[0] == 0
    batch, other = frames(seed=0), frames(seed=1)
    other["x"] = batch["x"]
    with torch.no_grad():
        assert torch.equal(model.predict(batch), model.predict(other))  # y is never read
        model.train()
        assert torch.equal(model.predict(batch), model.predict(other))  # not even in training mode


# causality ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["paper", "authors"])
@pytest.mark.parametrize("teacher", [1.0, 0.5])
def test_a_prediction_depends_on_earlier_frames_only(variant, teacher):
    torch.manual_seed(0)
    model = tiny(data=spec(k=2, t=3, size=4), variant=variant).double()
    model.train()
    s = torch.rand(1, 5, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(1, 3) < teacher).double()
    predictions = model.rollout(s, 2, 4, mask)  # ŝ_2 .. ŝ_5
    for t in range(4):  # predictions[:, t] is frame t + 2 (1-based), index t + 1
        grad, = torch.autograd.grad(predictions[:, t].sum(), s, retain_graph=True)
        per_frame = grad.abs().flatten(2).sum(2)[0]
        assert (per_frame[t + 1:] == 0).all(), (t, per_frame)
        if t < 2 or mask[0, t - 2]:  # the frame it read is the true frame
            assert per_frame[t] > 0


def test_perturbing_a_later_frame_leaves_earlier_predictions_alone():
    torch.manual_seed(0)
    model = tiny(data=spec(k=3, t=4, size=8))
    model.train()
    s = torch.rand(2, 7, 1, 8, 8)
    moved = s.clone()
    moved[:, 4] += 1.0
    ones = torch.ones(2, 4)
    with torch.no_grad():
        a, b = model.rollout(s, 3, 6, ones), model.rollout(moved, 3, 6, ones)
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])


# loss and generation -----------------------------------------------------------------------
def test_the_loss_is_the_mse_over_every_next_frame_prediction():
    torch.manual_seed(0)
    model = tiny()
    model.set_progress(0, 10)  # ε = 1: every target frame is true, so the rollout is fixed
    batch = frames()
    out = model.loss(batch)
    assert set(out) == {"loss", "mse_inputs", "mse_targets", "teacher_forcing"}
    s = torch.cat([batch["x"], batch["y"]], 1)
    predictions = model.rollout(s, 3, 6, torch.ones(2, 3))
    errors = (predictions - s[:, 1:]).square()
    torch.testing.assert_close(out["loss"], errors.mean())
    torch.testing.assert_close(out["mse_inputs"], errors[:, :2].mean())
    torch.testing.assert_close(out["mse_targets"], errors[:, 2:].mean())
    assert out["teacher_forcing"] == 1.0 and out["loss"].requires_grad
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_reverse_time_augmentation_plays_the_sequence_backwards():
    torch.manual_seed(0)
    forward, backward = tiny(), tiny(reverse=1.0)
    backward.load_state_dict(forward.state_dict())
    batch = frames()
    s = torch.cat([batch["x"], batch["y"]], 1).flip(1)
    flipped = {"x": s[:, :3], "y": s[:, 3:]}
    for m in (forward, backward):
        m.set_progress(0, 10)
    torch.testing.assert_close(backward.loss(batch)["loss"], forward.loss(flipped)["loss"])
    backward.eval()  # never in evaluation
    forward.eval()
    torch.testing.assert_close(backward.loss(batch)["loss"], forward.loss(batch)["loss"])


def test_generation_shapes_prefix_horizon_and_copies():
    torch.manual_seed(0)
    model = tiny()
    batch = frames()
    with torch.no_grad():
        p = model.predict(batch)
        assert p.shape == (2, 4, 1, 8, 8) and p.min() >= 0 and p.max() <= 1
        long = model.predict(batch, prefix=2, horizon=7)
        assert long.shape == (2, 9, 1, 8, 8) and torch.equal(long[:, :2], batch["y"][:, :2])
        assert model.predict(batch, prefix=3, horizon=0).shape == (2, 3, 1, 8, 8)
        # the rollout continues from the prefix: the same as conditioning on x and the prefix frames
        longer_x = {"x": torch.cat([batch["x"], batch["y"][:, :2]], 1)}
        again = tiny(data=spec(k=5, t=7))
        again.load_state_dict(model.state_dict())
        torch.testing.assert_close(again.predict(longer_x), long[:, 2:])
        draws = model.sample(batch, samples=3)
        assert draws.shape == (3, 2, 4, 1, 8, 8) and all(torch.equal(d, p) for d in draws)
        assert torch.equal(model.sample(batch), p)
        assert torch.equal(model.predict(batch, samples=5, temperature=0.0), p)
    with pytest.raises(NotImplementedError, match="deterministic"):
        model.log_prob(batch)
    with pytest.raises(ValueError, match="samples must be"):
        model.sample(batch, samples=0)


def test_convlstm_backbone_builds_and_trains():
    model = build({"type": "video_predictor", "patch": 2,
                   "rnn": {"type": "predrnn", "cell": "conv_lstm", "hidden": 4, "num_layers": 2, "filter_size": 3}},
                  "models", data=spec())
    model.loss(frames())["loss"].backward()
    assert type(model.rnn.cells[0]).__name__ == "ConvLSTMCell"


def test_recipe_errors_name_the_key():
    with pytest.raises(RecipeError, match="model.patch"):
        tiny(data=spec(size=6), patch=4)
    with pytest.raises(RecipeError, match="model.rnn"):  # MotionGRU needs an even grid: 6 / 2 = 3
        tiny(data=spec(size=6))
    with pytest.raises(RecipeError, match="model"):
        build({"type": "video_predictor"}, "models", data=DataSpec({"x": (3, 4), "y": (3, 4)}))
    with pytest.raises(RecipeError, match="sampling_end"):
        tiny(sampling_start=0.2, sampling_end=0.5)
    with pytest.raises(RecipeError, match="needs motion"):
        tiny(motion=False, variant="authors")
    with pytest.raises(RecipeError, match="sequence conditioner"):
        build({"type": "video_predictor", "patch": 2, "rnn": {"type": "cnn", "channels": [4], "kernel_sizes": [3, 3]}}, "models", data=spec())


def test_video_predictor_is_registered():
    assert MODELS.get("video_predictor").target is VideoPredictor


# recipes -----------------------------------------------------------------------------------
def tree(recipe):
    return {k: v for k, v in recipe.to_dict().items() if k not in ("name", "description")}


@has_task
def test_the_recipes_differ_by_their_switch_only():
    main = load_recipe("motionrnn_mmnist")
    assert tree(load_recipe("predrnn_mmnist")) == tree(load_recipe("motionrnn_mmnist", ["model.rnn.motion=false"]))
    assert tree(load_recipe("motionrnn_mmnist_authors")) == tree(
        load_recipe("motionrnn_mmnist", ["model.rnn.variant=authors"]))
    rnn = main.model.config.rnn.config
    assert (rnn.hidden, rnn.num_layers, rnn.filter_size, rnn.motion, rnn.variant) == (16, 3, 3, True, "paper")
    assert main.model.config.patch == 4 and main.model.config.sampling_decay == 0.6
    assert (main.train.batch_size, main.train.optimizer.config.lr) == (16, 1e-3)
    paper = load_recipe("motionrnn_mmnist_paper")
    rnn = paper.model.config.rnn.config
    assert (rnn.hidden, rnn.num_layers, rnn.filter_size, rnn.motion) == (64, 4, 5, True)
    assert (paper.train.batch_size, paper.train.max_steps, paper.model.config.sampling_decay) == (8, 80000, 0.625)


@has_task
@pytest.mark.parametrize("name", [*RECIPES[:-1], pytest.param(RECIPES[-1], marks=pytest.mark.slow)])
def test_every_recipe_builds_and_takes_an_optimizer_step(name, tmp_path):
    recipe = load_recipe(name)
    data = recipe.task.build(data_dir=tmp_path).data_spec()
    torch.manual_seed(0)
    model = recipe.model.build(data=data)
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    k, t = data.condition_shape[0], data.target_shape[0]
    size = data.target_shape[-1]
    g = torch.Generator().manual_seed(0)
    batch = {"x": torch.rand(2, k, 1, size, size, generator=g), "y": torch.rand(2, t, 1, size, size, generator=g)}
    loss = model.loss(batch)["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    with torch.no_grad():
        assert model.predict(batch).shape == (2, t, 1, size, size)


def app_json(name, *args):
    last = app(name, *args).stdout.strip().splitlines()[-1]
    return last if name == "sample" else json.loads(last)


TINY = ["task.sizes={train: 8, validation: 2, test: 2}", "task.frame_size=16", "task.input_frames=3",
        "task.output_frames=3", "train.batch_size=4",
        "train.eval_batch_size=2", "train.eval_every=2", "train.task_eval_every=1", "train.checkpoint_every=2",
        "train.threads=1", "model.rnn.hidden=4", "model.rnn.num_layers=2"]


@has_task
@pytest.mark.slow
def test_train_resume_evaluate_sample_through_the_apps(tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    common = [f"run_dir={run}", f"data_dir={data}"]
    first = app_json("train", "recipe=motionrnn_mmnist", *common, *TINY, "train.max_steps=2")
    assert first["step"] == 2 and first["nonfinite_steps"] == 0
    more = app_json("train", *common, "resume=auto", "train.max_steps=4")
    assert more["step"] == 4
    metrics = app_json("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test")
    assert metrics["split"] == "test" and metrics["checkpoint_step"] == 4
    picture = Path(app_json("sample", f"checkpoint={run}", f"data_dir={data}", "n=2").splitlines()[-1])
    assert picture.read_bytes()[:4] == b"\x89PNG"
