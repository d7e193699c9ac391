"""Task moving_mnist (issue 14/15): the bounce rule in both modes, rendering, determinism per
(seed, epoch, index) and across loader workers, the cached fixed sets, settings errors, and
evaluate / save_samples with a deterministic and a stochastic model."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from eddies.core import RecipeError, build, validate_spec
from eddies.tasks.moving_mnist import (
    EPS,
    MovingMNIST,
    bounce_step,
    generate,
    pool_digits,
    render,
    sequence_rng,
    trajectory,
)

pytestmark = pytest.mark.usefixtures("module_data_dir")
SIZES = {"train": 6, "validation": 3, "test": 4}


def small(source, **settings):
    base = {"source": str(source), "frame_size": 16, "digit_size": 7, "max_speed": 3, "input_frames": 2,
            "output_frames": 3, "test_output_frames": 4, "sizes": SIZES}
    return MovingMNIST(**{**base, **settings})


@pytest.mark.parametrize("stochastic", [False, True])
def test_digits_stay_inside_and_velocities_change_only_at_walls(stochastic):
    limit, speed = 9, 4
    for n in range(60):
        positions, velocities, exact = trajectory(np.random.default_rng(n), 40, limit, speed, stochastic)
        assert (positions >= 0).all() and (positions <= limit).all()
        assert (exact >= -EPS).all() and (exact <= limit + EPS).all()
        assert (np.abs(velocities) <= speed).all()
        free = exact[:-1] + velocities[:-1]  # where each digit would be without walls
        outside = (free < -EPS) | (free > limit + EPS)  # (T-1, 2): the move hits a wall on this axis
        changed = velocities[1:] != velocities[:-1]
        if stochastic:
            assert not changed[~outside.any(1)].any()  # no hit: the velocity is kept
        else:
            assert (np.abs(velocities) == np.abs(velocities[0])).all()  # only signs change
            assert (changed == outside).all()  # a component flips exactly when its axis hits a wall
            np.testing.assert_allclose(exact, np.rint(exact), atol=1e-9)  # integer positions stay integer
        # a free move is the plain sum
        np.testing.assert_allclose(exact[1:][~outside.any(1)], free[~outside.any(1)], atol=1e-9)


def test_a_stochastic_bounce_leaves_the_wall_and_draws_a_new_velocity():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        pos, vel, hits = bounce_step([1.0, 5.0], [-3.0, 0.0], 9, 4, True, rng)
        assert hits >= 1 and 0 <= pos[0] <= 9
        seen.add(tuple(vel))
    assert len(seen) > 5 and all(v[0] >= 0 or hits > 1 for v in seen)
    pos, vel, hits = bounce_step([1.0, 5.0], [-3.0, 2.0], 9, 4, False, rng)  # exact reflection
    assert (pos, vel, hits) == ([2.0, 7.0], [3.0, 2.0], 1)
    pos, vel, hits = bounce_step([8.0, 8.0], [3.0, 3.0], 9, 4, False, rng)  # corner: both flip
    assert (pos, vel, hits) == ([7.0, 7.0], [-3.0, -3.0], 1)


def test_render_sums_digits_and_clips_at_255():
    images = np.full((2, 3, 3), 200, np.uint8)
    positions = np.array([[[0, 0], [1, 1]]])
    video = render(images, positions, 5)[0]
    assert video[0, 0] == 200 and video[1, 1] == 255 and video[3, 3] == 200 and video[4, 4] == 0
    assert pool_digits(np.arange(16, dtype=np.uint8).reshape(1, 4, 4).repeat(7, 1).repeat(7, 2), 14).shape == (1, 14, 14)


def test_sequences_are_pure_functions_of_seed_epoch_and_index(fake_mnist):
    task = small(fake_mnist[0])
    data = task.dataset("train")
    first = data[3]
    assert first["x"].shape == (2, 1, 16, 16) and first["y"].shape == (3, 1, 16, 16)
    assert first["x"].dtype == torch.float32 and 0 <= first["x"].min() and first["y"].max() <= 1
    torch.testing.assert_close(data.__getitems__([5, 3])[1]["y"], first["y"], rtol=0, atol=0)
    data.set_epoch(1)
    assert not torch.equal(data[3]["y"], first["y"])
    data.set_epoch(0)
    torch.testing.assert_close(data[3]["x"], first["x"], rtol=0, atol=0)
    other = small(fake_mnist[0]).dataset("train")
    torch.testing.assert_close(other[3]["y"], first["y"], rtol=0, atol=0)
    assert not torch.equal(small(fake_mnist[0], seed=1).dataset("train")[3]["y"], first["y"])
    # the item is the documented generator call
    video, _, _ = generate(sequence_rng(0, "train", 0, 3), task.digit_pool("train"), 5, 2, 16, 3, True)
    torch.testing.assert_close(torch.cat([first["x"], first["y"]])[:, 0] * 255, torch.from_numpy(video).float())


def test_training_data_do_not_depend_on_the_number_of_workers(fake_mnist):
    data = small(fake_mnist[0]).dataset("train")
    data.set_epoch(2)
    batches = [torch.cat([b["y"] for b in DataLoader(data, batch_size=2, num_workers=w)]) for w in (0, 2)]
    torch.testing.assert_close(batches[0], batches[1], rtol=0, atol=0)


def test_the_fixed_sets_are_cached_identical_and_from_their_own_digits(fake_mnist):
    task = small(fake_mnist[0])
    task.prepare()
    test = task.fixed_set("test")
    again = small(fake_mnist[0])
    again.prepare()
    assert again.cache_dir() == task.cache_dir()
    for key in ("video", "digit", "position"):
        np.testing.assert_array_equal(again.fixed_set("test")[key], test[key])
    np.testing.assert_array_equal(task.generate_split("test", SIZES["test"])["video"], test["video"])
    assert test["video"].shape == (4, 6, 16, 16) and task.fixed_set("validation")["video"].shape == (3, 6, 16, 16)
    item = task.dataset("test")[1]
    assert item["y"].shape == (4, 1, 16, 16)
    torch.testing.assert_close(item["y"][:, 0] * 255, torch.tensor(test["video"][1, 2:]).float())
    assert small(fake_mnist[0], test_seed=7).cache_dir() != task.cache_dir()
    assert small(fake_mnist[0], mode="deterministic").cache_dir() != task.cache_dir()
    # test sequences use MNIST test digits (the fake file's 12), training ones its 40 training digits
    assert len(task.digit_pool("test")) == 12 and len(task.digit_pool("train")) == 40


@pytest.mark.parametrize(("settings", "key"), [
    ({"digit_size": 10}, "task.digit_size"),
    ({"frame_size": 7}, "task.frame_size"),
    ({"mode": "random"}, "task.mode"),
    ({"max_speed": 20}, "task.max_speed"),
    ({"output_frames": 0}, "task.output_frames"),
    ({"sizes": {"training": 3}}, "task.sizes.training"),
    ({"sizes": {"train": 0}}, "task.sizes.train"),
])
def test_bad_settings_name_their_key(settings, key):
    with pytest.raises(RecipeError, match=key.replace(".", r"\.")):
        small("never-read.pkl.gz", **settings)  # settings are checked before the source is read


def test_the_recipe_schema_checks_settings():
    with pytest.raises(RecipeError, match="mode"):
        validate_spec({"type": "moving_mnist", "mode": "sometimes"}, "tasks")
    with pytest.raises(RecipeError, match="frame_size"):
        validate_spec({"type": "moving_mnist", "frame_size": "big"}, "tasks")
    validate_spec({"type": "moving_mnist", "frame_size": 32, "digit_size": 14, "max_speed": 2}, "tasks")


class Jitter(nn.Module):
    """A stochastic stand-in: the last input frame plus noise of a per-draw scale."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def sample(self, batch, samples=None, temperature=1.0, prefix=None, horizon=None):
        last = batch["x"][:, -1:].expand(-1, horizon, -1, -1, -1)
        scale = torch.linspace(0.0, 0.5, samples).view(-1, 1, 1, 1, 1, 1).roll(1, 0)  # draw 1 is the exact copy
        return last.unsqueeze(0) + scale * torch.randn(samples, *last.shape)


def test_evaluate_and_save_samples(fake_mnist, tmp_path):
    task = small(fake_mnist[0])
    copy = build("zero_velocity", "models", data=task.data_spec())
    test = DataLoader(task.dataset("test"), batch_size=3)
    out = task.evaluate(copy, test, samples=2)
    assert {k for k in out if "step_4" not in k} == set(task.metric_directions()) - {
        k for k in task.metric_directions() if "step_4" in k}
    assert "psnr_best_step_4" in out  # the test horizon, beyond validation's? (both 4 here)
    assert out["psnr_best_mean"] == out["psnr_random_mean"]
    assert task.evaluate(copy, test, method="predict") == out
    assert task.metric_directions()["psnr_best_mean"] == "max" and task.metric_directions()["mse_sum_best_step_1"] == "min"
    torch.manual_seed(0)
    noisy = task.evaluate(Jitter(), test, samples=4, method="sample")
    assert noisy["psnr_best_mean"] >= out["psnr_best_mean"] - 1e-9  # the exact copy is among the draws
    assert noisy["psnr_random_mean"] < noisy["psnr_best_mean"]
    with pytest.raises(RecipeError, match="method"):
        task.evaluate(copy, test, method="mean")
    path = task.save_samples(Jitter(), tmp_path / "s.png", n=2, samples=2)
    from PIL import Image
    assert Image.open(path).size[1] > 2 * 3 * 16
    validation = task.evaluate(copy, DataLoader(task.dataset("validation"), batch_size=3), samples=1)
    assert set(validation) == set(task.metric_directions())


def test_module_example_runs():
    import doctest

    from eddies.tasks import moving_mnist

    result = doctest.testmod(moving_mnist)
    assert result.attempted > 0 and result.failed == 0
