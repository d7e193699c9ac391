"""Task exchange_rate (issue 13): GluonTS's split, no test day in training or scaling, the
dequantisation, MSE and CRPS-sum of the forecasts against hand computations."""

import gzip

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from eddies.core import DataError, RecipeError, build
from eddies.tasks.exchange_rate import ExchangeRate, default_source
from eddies.tasks.forecast_metrics import crps_sum

pytestmark = pytest.mark.usefixtures("module_data_dir")


def write_rates(path, days=400, seed=0):
    rng = np.random.default_rng(seed)
    rates = 1 + np.cumsum(0.01 * rng.standard_normal((days, 8)), 0)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(f"{v:.6f}" for v in row) for row in rates) + "\n")
    return np.round(rates, 6)


@pytest.fixture
def small(tmp_path):
    """A 400-day source and a task on it: 200 training days, windows of 10 -> 5 days."""
    rates = write_rates(tmp_path / "exchange_rate.txt.gz")
    task = ExchangeRate(source=str(tmp_path / "exchange_rate.txt.gz"), train_days=200, context_length=10,
                        prediction_length=5, test_windows=3, validation_windows=2)
    return task, rates


def test_gluonts_split_and_no_test_day_in_training_or_scaling(small):
    task, rates = small
    test, validation, train = (task.dataset(s) for s in ("test", "validation", "train"))
    assert len(test) == 3 and len(validation) == 2 and len(train) == 200 - 10 - 5 - 5 + 1 - 5
    # test window w forecasts days 200 + 5 w .. 204 + 5 w from the 10 days before
    mean, std = rates[:200].mean(0), rates[:200].std(0)
    for w in range(3):
        np.testing.assert_allclose(test[w]["y_raw"].numpy(), rates[200 + 5 * w: 205 + 5 * w])
        np.testing.assert_allclose(test[w]["x"][:, 0].numpy(), ((rates[190 + 5 * w: 200 + 5 * w] - mean) / std),
                                   rtol=1e-5, atol=1e-5)
    # scaling: the training days only (changing a test day changes nothing)
    np.testing.assert_allclose(task.scale[0], mean) and np.testing.assert_allclose(task.scale[1], std)
    # the training windows end before the validation days (190 = 200 - 2 x 5), which end at day 200
    last_train_day = int(task.target_starts("train").max()) + 5 - 1
    assert last_train_day == 189 and int(task.target_starts("validation")[0]) == 190
    assert int(task.target_starts("validation")[-1]) + 5 == 200 == int(task.target_starts("test")[0])
    days_seen = set()
    for start in task.target_starts("train"):
        days_seen |= set(range(start - 10, start + 5))
    assert max(days_seen) == 189 and min(days_seen) == 0


def test_the_real_split_sizes():
    if default_source() is None:
        pytest.skip("../shared/data/exchange_rate is not available")
    task = ExchangeRate()
    assert task.rates().shape == (7588, 8)
    assert list(task.target_starts("test")) == [6071, 6101, 6131, 6161, 6191]
    assert list(task.target_starts("validation")) == [5921, 5951, 5981, 6011, 6041]
    assert task.dataset("test")[4]["y_raw"].shape == (30, 8)


def test_dequantisation_is_one_quote_step_redrawn_per_epoch_and_only_in_training(small):
    task, _ = small
    exact = ExchangeRate(source=str(task.source), train_days=200, context_length=10, prediction_length=5,
                         test_windows=3, validation_windows=2, dequantise=0.0)
    train, plain = task.dataset("train"), exact.dataset("train")
    raw_noise = (train[0]["x"][:, 0].double() - plain[0]["x"][:, 0].double()) * torch.from_numpy(task.scale[1])
    assert raw_noise.abs().max() <= 0.5e-6 * 1.01 and raw_noise.abs().max() > 1e-7
    first = train[0]["x"].clone()
    train.set_epoch(1)
    assert not torch.equal(train[0]["x"], first)
    torch.testing.assert_close(task.dataset("test")[1]["x"], exact.dataset("test")[1]["x"])


def test_metrics_of_a_point_forecast_by_hand(small):
    task, rates = small
    model = build("zero_velocity", "models", data=task.data_spec())
    metrics = task.evaluate(model, DataLoader(task.dataset("test"), batch_size=2), samples=3)
    truth = torch.from_numpy(np.stack([rates[200 + 5 * w: 205 + 5 * w] for w in range(3)]))
    last = torch.from_numpy(np.stack([rates[199 + 5 * w] for w in range(3)]))[:, None].expand(-1, 5, -1)
    assert metrics["mse"] == pytest.approx((last - truth).pow(2).mean().item(), rel=1e-5)
    expected_crps = (last.sum(-1) - truth.sum(-1)).abs().sum() / truth.sum(-1).abs().sum()
    assert metrics["crps_sum"] == pytest.approx(expected_crps.item(), rel=1e-5)
    assert metrics["crps_sum"] == pytest.approx(crps_sum(last[None], truth), rel=1e-5)
    assert metrics["mse_median"] == pytest.approx(metrics["mse"], rel=1e-6) and metrics["diverged"] == 0


def test_diverged_paths_are_counted_and_the_median_ignores_them(small):
    task, _ = small

    class HalfNaN(torch.nn.Module):
        def sample(self, batch, samples, **options):
            last = batch["x"][:, -1:].expand(-1, 5, -1, -1)
            draws = last.expand(samples, *last.shape).clone()
            draws[0] = float("nan")  # one of the three paths of every window runs away
            return draws

    metrics = task.evaluate(HalfNaN(), DataLoader(task.dataset("test"), batch_size=3), samples=3)
    point = task.evaluate(build("zero_velocity", "models", data=task.data_spec()),
                          DataLoader(task.dataset("test"), batch_size=3), samples=1)
    assert metrics["diverged"] == pytest.approx(1 / 3) and np.isnan(metrics["mse"])
    assert metrics["mse_median"] == pytest.approx(point["mse"], rel=1e-5)


def test_a_random_walk_scores_mse_of_its_sample_mean_and_a_positive_crps(small, tmp_path):
    task, _ = small
    model = build("gaussian_random_walk", "models", data=task.data_spec())
    torch.manual_seed(0)
    metrics = task.evaluate(model, DataLoader(task.dataset("test"), batch_size=3), samples=200)
    point = task.evaluate(build("zero_velocity", "models", data=task.data_spec()),
                          DataLoader(task.dataset("test"), batch_size=3), samples=1)
    # zero drift: the mean of 200 paths is near the last value, the paths' spread gives the CRPS
    assert metrics["mse"] == pytest.approx(point["mse"], rel=0.2) and metrics["crps_sum"] > point["crps_sum"]
    assert 0 < metrics["crps_sum"] and np.isfinite(metrics["mse_scaled"])
    assert task.save_samples(model, tmp_path / "fan.png", n=20).read_bytes()[:4] == b"\x89PNG"


def test_bad_sources_and_settings(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(DataError, match="bad.txt"):
        ExchangeRate(source=str(bad)).rates()
    with pytest.raises(DataError, match="does not exist"):
        ExchangeRate(source=str(tmp_path / "missing.txt.gz")).prepare()
    with pytest.raises(RecipeError, match="task.train_days"):
        ExchangeRate(train_days=100, validation_windows=5, prediction_length=30)
