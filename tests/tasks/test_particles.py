"""Task particles (issue 13): the simulator's rules, determinism per seed, the normalisation from
training data, the windows of both burn-ins, the training jitter and the metrics."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from eddies.core import RecipeError, build, validate_spec
from eddies.tasks.particles import Particles, min_max, normalise, simulate

pytestmark = pytest.mark.usefixtures("module_data_dir")
SIZES = {"train": 6, "validation": 3, "test": 4}


def test_p1_and_p2_move_at_constant_velocity_and_p3_is_pushed_only_within_distance_1():
    states = simulate(np.random.RandomState(1), 200, 50)
    position, velocity = states[..., :2], states[..., 2:]
    # every particle moves by its (updated) velocity
    np.testing.assert_allclose(position[:, 1:] - position[:, :-1], velocity[:, 1:], atol=1e-12)
    # p1 and p2 never change velocity
    np.testing.assert_array_equal(velocity[:, 1:, :2], velocity[:, :1, :2].repeat(49, 1))
    # p3's change of velocity is the push of the protocol page, written out per neighbour
    before = states[:, :-1]
    expected = np.zeros_like(velocity[:, 1:, 2])
    for i in (0, 1):
        offset = before[:, :, 2, :2] - before[:, :, i, :2]
        d = np.linalg.norm(offset, axis=-1, keepdims=True)
        expected += np.where(d < 1, 0.05 * (1 - d) * offset / d, 0.0)
    change = velocity[:, 1:, 2] - velocity[:, :-1, 2]
    np.testing.assert_allclose(change, expected, atol=1e-12)
    far = (np.linalg.norm(before[:, :, 2:3, :2] - before[:, :, :2, :2], axis=-1) >= 1).all(-1)
    assert far.any() and (~far).any()  # both cases occur
    assert (change[far] == 0).all() and (np.abs(change[~far]).sum(-1) > 0).all()


def test_initial_states_follow_the_stated_ranges_and_the_seed_fixes_everything():
    states = simulate(np.random.RandomState(1), 300, 2)[:, 0]
    for p, (pos, vel) in enumerate((((-2, -1), (0.05, 0.1)), ((1, 2), (-0.1, -0.05)), ((-1, 1), (-0.05, 0.05)))):
        assert (states[:, p, :2] >= pos[0]).all() and (states[:, p, :2] <= pos[1]).all()
        assert (states[:, p, 2:] >= vel[0]).all() and (states[:, p, 2:] <= vel[1]).all()
    np.testing.assert_array_equal(simulate(np.random.RandomState(1), 5, 10), simulate(np.random.RandomState(1), 5, 10))
    assert not np.array_equal(simulate(np.random.RandomState(1), 5, 10), simulate(np.random.RandomState(2), 5, 10))


def test_the_cache_is_the_simulation_and_the_scaling_comes_from_training_states(tmp_path):
    task = Particles(sizes=SIZES)
    task.prepare()
    rng = np.random.RandomState(1)
    raw = {s: simulate(rng, SIZES[s], 50) for s in ("train", "validation", "test")}
    for split, states in raw.items():
        np.testing.assert_array_equal(task.states(split), states)
    assert task.statistics == min_max(raw["train"])
    train = normalise(raw["train"], task.statistics)
    assert train[..., :2].min() == -1 and train[..., :2].max() == 1 and train[..., 2:].min() == -1
    other = Particles(data_dir=tmp_path, sizes=SIZES, seed=2)
    assert other.cache_dir() != task.cache_dir()
    test = task.dataset("test")
    expected = torch.from_numpy(normalise(raw["test"], task.statistics).transpose(0, 1, 3, 2)).float()
    torch.testing.assert_close(test[2]["x"], expected[2, :25])
    torch.testing.assert_close(test[2]["y"], expected[2, 25:])


@pytest.mark.parametrize("burn_in, windows_per_sequence", [(25, 1), (10, 16)])
def test_windows_of_each_burn_in(burn_in, windows_per_sequence):
    task = Particles(sizes=SIZES, burn_in=burn_in)
    train, test = task.dataset("train"), task.dataset("test")
    assert len(train) == SIZES["train"] * windows_per_sequence and len(test) == SIZES["test"]
    assert test[0]["x"].shape == (burn_in, 4, 3) and test[0]["y"].shape == (25, 4, 3)
    spec = task.data_spec()
    assert spec.shapes["x"] == (burn_in, 4, 3) and spec.shapes["y"] == (25, 4, 3)
    names = task.metric_directions()
    assert {f"mse_burn_in_{burn_in}_step_{k}" for k in (1, 15, 25)} <= set(names) and "mse_mean" in names


def test_the_training_jitter_is_small_redrawn_per_epoch_and_absent_from_evaluation():
    task = Particles(sizes=SIZES)
    exact = Particles(sizes=SIZES, train_noise=0.0).dataset("train")[0]["x"]
    train = task.dataset("train")
    first = train[0]["x"].clone()
    assert 5e-4 < (first - exact).std() < 2e-3
    train.set_epoch(1)
    assert not torch.equal(train[0]["x"], first)
    train.set_epoch(0)
    torch.testing.assert_close(train[0]["x"], first)
    test = task.dataset("test")
    test.set_epoch(3)
    expected = torch.from_numpy(normalise(task.states("test"), task.statistics).transpose(0, 1, 3, 2)).float()
    torch.testing.assert_close(test[0]["x"], expected[0, :25])


def test_mse_per_step_against_a_hand_computation():
    task = Particles(sizes=SIZES)
    model = build("zero_velocity", "models", data=task.data_spec())
    metrics = task.evaluate(model, DataLoader(task.dataset("test"), batch_size=3))
    test = task.dataset("test")
    errors = torch.stack([(test[i]["y"] - test[i]["x"][-1]).double() ** 2 for i in range(len(test))])
    for k in (1, 15, 25):
        assert metrics[f"mse_burn_in_25_step_{k}"] == pytest.approx(errors[:, k - 1].mean().item(), rel=1e-6)
    assert metrics["mse_mean"] == metrics["mse_burn_in_25_mean"] == pytest.approx(errors.mean().item(), rel=1e-6)


def test_physical_constant_velocity_is_exact_for_particles_that_are_never_pushed():
    task = Particles(sizes=SIZES, train_noise=0.0)
    model = build({"type": "constant_velocity", "hold": [2, 3]}, "models", data=task.data_spec())
    test = task.dataset("test")
    batch = test.batch(list(range(len(test))))
    prediction = model.predict(batch)
    torch.testing.assert_close(prediction[..., :2], batch["y"][..., :2], atol=1e-5, rtol=0)  # p1, p2


def test_picture_and_bad_settings(tmp_path):
    task = Particles(sizes=SIZES)
    model = build("constant_velocity", "models", data=task.data_spec())
    assert task.save_samples(model, tmp_path / "p.png", n=2).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(RecipeError, match="task.output_frames"):
        Particles(burn_in=30, output_frames=25)
    with pytest.raises(RecipeError, match="sizes.training"):
        validate_spec({"type": "particles", "sizes": {"training": 3}}, "tasks")
