"""The tasks over one's own data (eddies.tasks.user_data): ``tensors`` and ``hf_dataset``."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from eddies.core import DataError, DataSpec, RecipeError, build, validate_spec
from eddies.tasks.cache import file_sha256
from eddies.tasks.user_data import flat_tensors, save_tensors


def _tensors(**settings):
    return validate_spec({"type": "tensors", **settings}, "tasks")


def _items(dataset):
    return {k: torch.stack([dataset[i][k] for i in range(len(dataset))]) for k in dataset[0]}


def test_a_file_with_splits_serves_them_as_float32_and_test_defaults_to_validation(tmp_path):
    g = torch.Generator().manual_seed(0)
    train = {"x": torch.randn(12, 3, generator=g, dtype=torch.float64), "y": torch.randn(12, 2, 2, generator=g),
             "label": torch.arange(12)}
    validation = {k: v[:5] + 1 for k, v in train.items()}
    save_file({**{f"train/{k}": v for k, v in train.items()}, **{f"validation/{k}": v for k, v in validation.items()}},
              tmp_path / "d.safetensors")
    task = _tensors(file=str(tmp_path / "d.safetensors")).build(data_dir=tmp_path)
    task.prepare()
    assert task.data_spec() == DataSpec({"label": (), "x": (3,), "y": (2, 2)}, target="y", condition="x")
    served = _items(task.dataset("train"))
    assert served["x"].dtype == torch.float32 and served["label"].dtype == torch.int64
    assert torch.equal(served["x"], train["x"].float()) and torch.equal(served["label"], train["label"])
    assert torch.equal(_items(task.dataset("test"))["y"], validation["y"])  # no test split: the validation one
    with pytest.raises(DataError, match="unknown split 'val'"):
        task.dataset("val")


def test_one_pool_is_split_by_a_seeded_permutation(tmp_path):
    x = torch.arange(50.0)[:, None]
    task = build("tensors", "tasks", data_dir=tmp_path, tensors={"x": x, "y": 2 * x})
    task.prepare()
    train, val = _items(task.dataset("train")), _items(task.dataset("validation"))
    assert (len(train["x"]), len(val["x"])) == (45, 5)  # validation_fraction 0.1
    assert sorted(torch.cat([train["x"], val["x"]]).flatten().tolist()) == x.flatten().tolist()  # disjoint, all
    assert torch.equal(train["y"], 2 * train["x"])  # rows stay together
    again = build("tensors", "tasks", data_dir=tmp_path, tensors={"x": x, "y": 2 * x})
    again.prepare()
    assert torch.equal(_items(again.dataset("validation"))["x"], val["x"])
    other = _tensors(**{**task.to_spec(), "seed": 1, "type": "tensors"}).build(data_dir=tmp_path)
    other.prepare()
    assert not torch.equal(_items(other.dataset("validation"))["x"], val["x"])


def test_tensors_given_in_python_are_written_once_and_recorded_by_their_spec(tmp_path):
    x, y = torch.randn(20, 2), torch.randn(20, 1)
    task = build({"type": "tensors", "condition": None, "target": "y"}, "tasks", data_dir=tmp_path,
                 tensors={"train": {"x": x.numpy(), "y": y}, "validation": {"x": x[:4], "y": y[:4]}})
    spec = task.to_spec()
    assert spec["file"].startswith(str((tmp_path / "tensors").resolve())) and spec["file"].endswith(".safetensors")
    assert spec["condition"] is None and len(spec["sha256"]) == 64
    rebuilt = validate_spec(spec, "tasks").build(data_dir=None)  # the recorded spec alone finds the data
    rebuilt.prepare()
    assert torch.equal(_items(rebuilt.dataset("train"))["y"], y) and rebuilt.data_spec().condition is None
    # the same tensors: the same file; other tensors: another
    assert build("tensors", "tasks", data_dir=tmp_path, tensors={"train": {"x": x, "y": y},
                 "validation": {"x": x[:4], "y": y[:4]}}).to_spec()["file"] == spec["file"]
    assert build("tensors", "tasks", data_dir=tmp_path, tensors={"x": x, "y": y + 1}).to_spec()["file"] != spec["file"]
    # a file a recipe may record is never replaced by other tensors
    with pytest.raises(DataError, match="exists and holds other tensors"):
        build({"type": "tensors", "file": spec["file"]}, "tasks", data_dir=tmp_path, tensors={"x": x, "y": y})
    assert file_sha256(spec["file"]) == spec["sha256"]
    # a recorded file that changed since is refused
    save_file({"x": x, "y": y}, spec["file"])
    with pytest.raises(DataError, match="changed since this recipe recorded it"):
        rebuilt.prepare()


@pytest.mark.parametrize(
    ("tensors", "settings", "error", "words"),
    [
        ({"x": torch.zeros(4, 1), "z": torch.zeros(4, 1)}, {}, DataError, "has no target 'y' .*holds x, z"),
        ({"a": torch.zeros(4, 1), "y": torch.zeros(4, 1)}, {}, DataError, "has no condition 'x'"),
        ({"x": torch.zeros(4, 1), "y": torch.zeros(5, 1)}, {}, DataError, "different numbers of items"),
        ({"x": torch.zeros(4, 1), "y": torch.zeros(4, 1)}, {"validation_fraction": 0.01}, DataError,
         "leaves no validation"),
        ({"train": {"x": torch.zeros(4, 1), "y": torch.zeros(4, 1)}, "validation": {"x": torch.zeros(2, 2),
                                                                                    "y": torch.zeros(2, 1)}},
         {}, DataError, "differ in names or shapes"),
        ({"x": torch.tensor(1.0)}, {}, DataError, "is a scalar"),
        ({"training": {"x": torch.zeros(2)}}, {}, DataError, "unknown split 'training'"),
    ],
)
def test_bad_tensors_are_one_clear_error(tmp_path, tensors, settings, error, words):
    with pytest.raises(error, match=words):
        task = build({"type": "tensors", **settings}, "tasks", data_dir=tmp_path, tensors=tensors)
        task.prepare()


def test_bad_settings_name_the_key(tmp_path):
    with pytest.raises(RecipeError) as err:
        _tensors().build(data_dir=tmp_path)  # neither a file nor tensors
    assert err.value.path == "task.file"
    with pytest.raises(RecipeError) as err:
        validate_spec({"type": "tensors", "file": "a", "sha256": "abc"}, "tasks")
    assert err.value.path == "sha256"
    with pytest.raises(RecipeError, match="condition and target are both 'y'"):
        _tensors(file="a", condition="y").build(data_dir=tmp_path)
    save_file({"train/x": torch.zeros(3, 1), "y": torch.zeros(3, 1)}, tmp_path / "mixed.safetensors")
    with pytest.raises(DataError, match="mixes <split>/<name> keys with plain ones"):
        _tensors(file=str(tmp_path / "mixed.safetensors")).build(data_dir=tmp_path).prepare()
    with pytest.raises(DataError, match="does not exist"):
        _tensors(file=str(tmp_path / "none.safetensors")).build(data_dir=tmp_path).prepare()
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="cannot read"):
        _tensors(file=str(tmp_path / "junk.safetensors")).build(data_dir=tmp_path).prepare()


def test_flat_keys_are_sorted_and_saving_is_content_addressed(tmp_path):
    assert list(flat_tensors({"y": [[1.0]], "train": {"b": [1], "a": [2]}})) == ["train/a", "train/b", "y"]
    path, digest = save_tensors({"x": torch.ones(2, 1)}, None, tmp_path)
    assert path == (tmp_path / "tensors" / f"{digest[:16]}.safetensors").resolve()


# ------------------------------------------------------------------------------------------
class Linear(torch.nn.Module):
    """y ~ N(x w, 1): a known log-density and prediction."""

    kind = "linear_test"

    def __init__(self, log_prob=True):
        super().__init__()
        self.w, self.has_log_prob = torch.tensor([[2.0], [-1.0]]), log_prob

    def log_prob(self, batch):
        if not self.has_log_prob:
            raise NotImplementedError("linear_test has no tractable log_prob")
        return torch.distributions.Normal(batch["x"] @ self.w, 1.0).log_prob(batch["y"]).sum(-1)

    def predict(self, batch, samples=None, temperature=None):
        return batch["x"] @ self.w

    def sample(self, batch, temperature=1.0):
        return batch["x"] @ self.w + temperature * torch.randn(len(batch["x"]), 1)


def _loader(task, split, size=7):
    data = task.dataset(split)
    return [{k: torch.stack([data[i][k] for i in range(s, min(s + size, len(data)))]) for k in data[0]}
            for s in range(0, len(data), size)]


def test_evaluate_computes_the_mean_nll_and_the_mse(tmp_path):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 2, generator=g)
    y = x @ torch.tensor([[2.0], [-1.0]]) + torch.randn(40, 1, generator=g)
    task = build({"type": "tensors", "validation_fraction": 0.5}, "tasks", data_dir=tmp_path, tensors={"x": x, "y": y})
    task.prepare()
    assert task.metric_directions() == {"mean_nll": "min", "mse": "min"}
    val = _items(task.dataset("validation"))
    residual = val["y"] - val["x"] @ torch.tensor([[2.0], [-1.0]])
    metrics = task.evaluate(Linear(), _loader(task, "validation"))
    assert metrics["mse"] == pytest.approx(float(residual.pow(2).mean()), rel=1e-6)
    assert metrics["mean_nll"] == pytest.approx(float(0.5 * residual.pow(2).mean() + 0.5 * math.log(2 * math.pi)),
                                                rel=1e-6)
    with pytest.raises(RecipeError) as err:
        task.evaluate(Linear(log_prob=False), _loader(task, "validation"))
    assert err.value.path == "task.metrics" and "leave 'mean_nll' out of task.metrics" in str(err.value)
    mse_only = build({"type": "tensors", "metrics": ["mse"], "validation_fraction": 0.5}, "tasks", data_dir=tmp_path,
                     tensors={"x": x, "y": y})
    mse_only.prepare()
    assert set(mse_only.evaluate(Linear(log_prob=False), _loader(mse_only, "validation"))) == {"mse"}
    with pytest.raises(RecipeError, match=r"unknown options \['sample'\]"):
        task.evaluate(Linear(), _loader(task, "validation"), sample=3)


def test_save_samples_draws_a_png(tmp_path):
    x = torch.randn(30, 2)
    task = build("tensors", "tasks", data_dir=tmp_path, tensors={"x": x, "y": x[:, :1] * 2})
    task.prepare()
    path = task.save_samples(Linear(), tmp_path / "pics" / "s.png", n=10, temperature=[1.0, 0.5])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
def _saved_dataset(tmp_path):
    import datasets

    rows = {"features": [[float(i), float(-i)] for i in range(20)], "value": [float(i) / 2 for i in range(20)],
            "name": [f"r{i}" for i in range(20)]}
    parts = {"train": datasets.Dataset.from_dict({k: v[:14] for k, v in rows.items()}),
             "valid": datasets.Dataset.from_dict({k: v[14:] for k, v in rows.items()})}
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "saved"))
    return tmp_path / "saved"


def test_hf_dataset_serves_the_columns_of_a_saved_dataset(tmp_path):
    folder = _saved_dataset(tmp_path)
    task = validate_spec({"type": "hf_dataset", "path": str(folder), "target": "value", "condition": "features",
                          "splits": {"train": "train", "validation": "valid"}}, "tasks").build(data_dir=tmp_path)
    task.prepare()
    assert task.data_spec() == DataSpec({"value": (1,), "features": (2,)}, target="value", condition="features")
    item = task.dataset("validation")[1]
    assert sorted(item) == ["features", "value"]  # only the two roles
    assert torch.equal(item["features"], torch.tensor([15.0, -15.0])) and item["value"].dtype == torch.float32
    assert len(task.dataset("test")) == 6  # no test split named: the validation one
    assert task.evaluate(_Const(), [{k: v[None] for k, v in item.items()}])["mse"] == pytest.approx(7.5 ** 2)


class _Const(torch.nn.Module):
    def log_prob(self, batch):
        return torch.zeros(len(batch["value"]))

    def predict(self, batch, samples=None, temperature=None):
        return torch.zeros_like(batch["value"])


def test_hf_dataset_from_builder_files(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n" + "".join(f"{i},{2 * i}\n" for i in range(8)))
    (tmp_path / "val.csv").write_text("a,b\n1,2\n3,6\n")
    task = build({"type": "hf_dataset", "path": "csv", "target": "b", "condition": "a",
                  "data_files": {"train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "val.csv")},
                  "splits": {"train": "train", "validation": "validation"}}, "tasks", data_dir=tmp_path / "data")
    task.prepare()
    assert [task.dataset("train")[i]["b"].item() for i in range(8)] == [2 * i for i in range(8)]
    assert (tmp_path / "data" / "hf_datasets").is_dir()  # datasets' cache under the data dir


def test_hf_dataset_mistakes_are_one_clear_error(tmp_path):
    folder = _saved_dataset(tmp_path)

    def hf(**settings):
        return build({"type": "hf_dataset", "path": str(folder), "target": "value", "condition": "features",
                      **settings}, "tasks", data_dir=tmp_path)

    with pytest.raises(DataError, match=r"has no split 'validation' \(task.splits.validation\); it has train, valid"):
        hf().prepare()
    with pytest.raises(DataError, match="has no target 'price'"):
        hf(target="price", splits={"train": "train", "validation": "valid"}).prepare()
    with pytest.raises(RecipeError) as err:
        hf(splits={"train": "train"})
    assert err.value.path == "task.splits" and "validation" in str(err.value)
    with pytest.raises(DataError, match="cannot load split 'train'"):
        build({"type": "hf_dataset", "path": str(tmp_path / "nowhere"), "target": "y"}, "tasks",
              data_dir=tmp_path).prepare()


def test_the_module_example_runs():
    import doctest

    import eddies.tasks.user_data

    result = doctest.testmod(eddies.tasks.user_data, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
