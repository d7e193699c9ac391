"""zero_velocity and constant_velocity: the deterministic baselines of motion prediction."""

import pytest
import torch

from eddies.core import DataSpec, RecipeError, ShapeError, build, get_registry

FRAME = (3, 4)
DATA = DataSpec({"x": (5, *FRAME), "y": (6, *FRAME)})


def batch(rows=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(rows, 5, *FRAME, generator=g, dtype=torch.float64),
            "y": torch.randn(rows, 6, *FRAME, generator=g, dtype=torch.float64)}


def models(data=DATA):
    return {kind: build(kind, "models", data=data) for kind in ("zero_velocity", "constant_velocity")}


def test_registered_in_eddies_models_without_parameters():
    entries = {e.name: e for e in get_registry("models").entries()}
    for kind, model in models().items():
        assert entries[kind].distribution == "eddies-models"
        assert model.kind == kind and list(model.parameters()) == [] and model.state_dict() == {}


def test_the_rules_frame_by_frame():
    b = batch()
    x = b["x"]
    zero, const = (m.predict(b) for m in models().values())
    assert zero.shape == const.shape == (2, 6, *FRAME)
    for k in range(1, 7):  # written out frame by frame, independently of the vectorised rule
        torch.testing.assert_close(zero[:, k - 1], x[:, 4])
        torch.testing.assert_close(const[:, k - 1], x[:, 4] + k * (x[:, 4] - x[:, 3]))


def test_a_linear_trajectory_is_continued_exactly():
    t = torch.arange(11, dtype=torch.float64)
    line = 0.5 - 2.0 * t[None, :, None, None] + torch.zeros(1, 11, *FRAME, dtype=torch.float64)
    b = {"x": line[:, :5], "y": line[:, 5:]}
    torch.testing.assert_close(models()["constant_velocity"].predict(b), b["y"])
    still = {"x": torch.ones(1, 5, *FRAME), "y": torch.zeros(1, 6, *FRAME)}
    for model in models().values():  # a still pose stays still
        torch.testing.assert_close(model.predict(still), torch.ones(1, 6, *FRAME))


def test_prefix_and_horizon():
    b = batch()
    x, y = b["x"], b["y"]
    for kind, model in models().items():
        out = model.predict(b, prefix=2, horizon=3)
        assert out.shape == (2, 5, *FRAME)
        torch.testing.assert_close(out[:, :2], y[:, :2])  # the known target frames come first
        step = 0 * y[:, 1] if kind == "zero_velocity" else y[:, 1] - y[:, 0]
        for k in range(1, 4):
            torch.testing.assert_close(out[:, 1 + k], y[:, 1] + k * step)
        # one known target frame: the velocity is its change from the last input frame
        one = model.predict(b, prefix=1, horizon=1)
        step = 0 * y[:, 0] if kind == "zero_velocity" else y[:, 0] - x[:, 4]
        torch.testing.assert_close(one[:, 1], y[:, 0] + step)
        assert model.predict(b, horizon=40).shape == (2, 40, *FRAME)  # past the target's length
        assert model.predict({"x": x}).shape == (2, 6, *FRAME)  # no target needed without a prefix


def test_deterministic_samples_and_options():
    b = batch()
    for model in models().values():
        point = model.predict(b, samples=10, temperature=0.3)
        torch.testing.assert_close(point, model.predict(b))
        torch.testing.assert_close(model.sample(b), point)
        draws = model.sample(b, samples=3, temperature=2.0)
        assert draws.shape == (3, 2, 6, *FRAME)
        for n in range(3):
            torch.testing.assert_close(draws[n], point)
        draws[0].zero_()  # the copies are separate tensors
        torch.testing.assert_close(draws[1], point)


def test_no_density():
    for kind, model in models().items():
        with pytest.raises(NotImplementedError, match=kind):
            model.log_prob(batch())
        with pytest.raises(NotImplementedError, match=kind):
            model.loss(batch())


def test_errors():
    model = models()["constant_velocity"]
    with pytest.raises(ValueError, match="samples must be an integer"):
        model.predict(batch(), samples=0)
    with pytest.raises(ValueError, match="horizon >= 0"):
        model.predict(batch(), horizon=-1)
    with pytest.raises(ShapeError, match="prefix=7 needs the target 'y'"):
        model.predict(batch(), prefix=7, horizon=1)
    with pytest.raises(ShapeError, match="prefix=1 needs the target 'y'"):
        model.sample({"x": batch()["x"]}, prefix=1)
    with pytest.raises(ShapeError, match="condition 'x' must have shape"):
        model.predict({"x": torch.randn(2, 5, 4, 3)})
    with pytest.raises(RecipeError, match="same frame shape"):
        build("zero_velocity", "models", data=DataSpec({"x": (5, 3, 4), "y": (6, 3, 5)}))
    with pytest.raises(RecipeError, match="same frame shape"):
        build("zero_velocity", "models", data=DataSpec({"y": (6, 3)}, condition=None))
    with pytest.raises(RecipeError, match="reads the last 2 input frames"):
        build("constant_velocity", "models", data=DataSpec({"x": (1, 3), "y": (6, 3)}))
    assert build("zero_velocity", "models", data=DataSpec({"x": (1, 3), "y": (6, 3)})).predict(
        {"x": torch.ones(2, 1, 3)}).shape == (2, 6, 3)
