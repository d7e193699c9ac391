"""Task weizmann_horse on a handful of the real images: split, preprocessing, noise, cache, metrics."""

import doctest
import io
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

import eddies.tasks.cache
import eddies.tasks.weizmann_horse as module
from eddies.core import TASKS, DataError, RecipeError, ShapeError, build
from eddies.tasks.segmentation_metrics import class_mean_iou, confusion_counts
from eddies.tasks.weizmann_horse import (
    SPLIT_NUMBERS,
    default_source,
    predicted_mask,
    preprocess_pair,
    split_numbers,
)

SOURCE = default_source()
REPOSITORY = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(SOURCE is None, reason="../shared/data/weizmann_horse is not available")
LIMIT = {"train": 3, "validation": 2, "test": 2}


pytestmark = pytest.mark.usefixtures("module_data_dir")


def make(**cfg):
    return build({"type": "weizmann_horse", **cfg}, "tasks")


def items(data, rows=None):
    batch = data.__getitems__(list(range(len(data))) if rows is None else rows)
    return {k: torch.stack([item[k] for item in batch]) for k in batch[0]}


def copy_source(tmp_path, numbers):
    """A temporary source with the real files of ``numbers``."""
    for part in ("rgb", "figure_ground"):
        (tmp_path / "src" / part).mkdir(parents=True)
        for n in numbers:
            shutil.copy(SOURCE / part / f"horse{n:03d}.jpg", tmp_path / "src" / part)
    return tmp_path / "src"


def png(array):
    out = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


# split and source ----------------------------------------------------------------------------
def test_split_is_disjoint_covers_1_to_328_and_is_the_protocol_split():
    parts = [split_numbers(s) for s in ("train", "validation", "test")]
    assert [len(p) for p in parts] == [180, 20, 128]
    assert sorted(sum(parts, [])) == list(range(1, 329))  # disjoint and complete
    assert (parts[0][0], parts[0][-1], parts[1][0], parts[1][-1], parts[2][0], parts[2][-1]) == (
        1, 180, 181, 200, 201, 328)
    assert parts == [split_numbers(s) for s in ("train", "validation", "test")]  # stable
    assert split_numbers("test", {"test": 3}) == [201, 202, 203]
    assert {k: (v.start, v.stop) for k, v in SPLIT_NUMBERS.items()} == {
        "train": (1, 181), "validation": (181, 201), "test": (201, 329)}
    with pytest.raises(DataError, match="unknown split 'val'.*train, validation, test"):
        split_numbers("val")


@needs_data
def test_default_source_is_the_shared_folder_beside_the_repository(monkeypatch):
    assert SOURCE == (REPOSITORY.parent / "shared" / "data" / "weizmann_horse").resolve()
    monkeypatch.chdir(REPOSITORY / "packages")
    assert default_source() == SOURCE


def test_a_missing_source_says_where_it_looked_and_how_to_set_it(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"nowhere has no folder rgb/.*task\.source=PATH"):
        make(source=str(tmp_path / "nowhere")).prepare()
    monkeypatch.setattr(eddies.tasks.cache, "search_roots", lambda: [tmp_path])
    with pytest.raises(DataError, match=r"looked for shared/data/weizmann_horse in .* and its parents.*task\.source"):
        make().prepare()


# preprocessing ------------------------------------------------------------------------------
@needs_data
def test_registered_with_the_data_spec_and_metric_directions():
    assert "weizmann_horse" in TASKS
    spec = make(size=64).data_spec()
    assert spec.shapes == {"y": (3, 64, 64), "x": (3, 64, 64)} and (spec.target, spec.condition) == ("y", "x")
    assert make().metric_directions() == {
        "iou_class_mean_batch10": "max", "iou_class_mean_pooled": "max", "iou_foreground_pooled": "max",
        "pixel_accuracy": "max", "nll_nats": "min"}


@needs_data
def test_real_images_give_unit_images_and_binary_tiled_masks():
    task = make(limit=LIMIT)
    for split in ("train", "validation", "test"):
        data = task.dataset(split)
        assert data.numbers.tolist() == split_numbers(split, LIMIT)
        batch = items(data)
        assert batch["x"].shape == batch["y"].shape == (len(data), 3, 32, 32)
        assert batch["index"].tolist() == split_numbers(split, LIMIT)
        mask = batch["mask"]
        assert set(mask.unique().tolist()) == {0, 1}  # a horse and a background in every image
        assert 0.05 < mask.double().mean() < 0.8
        # every tiled channel of y lies in the unit bin [m - 1, m) of its pixel's class
        m = mask[:, None].double().expand(-1, 3, -1, -1)
        y = batch["y"].double()
        assert bool(((y >= m - 1 - 1e-6) & (y <= m + 1e-6)).all())
        assert not torch.equal(y[:, 0], y[:, 1])  # independent noise per channel
        x = batch["x"].double()
        levels = data.images.double() / 255
        if split == "train":
            assert bool(((x - levels >= -1e-6) & (x - levels < 1 / 256 + 1e-6)).all()) and x.max() > 0
        else:  # no dequantisation of x
            torch.testing.assert_close(x, levels, rtol=0, atol=1e-6)
            assert 0 <= x.min() and x.max() <= 1


@needs_data
def test_preprocessing_matches_an_independent_reading_of_the_files():
    task = make(limit=LIMIT)
    data = task.dataset("validation")
    image = Image.open(SOURCE / "rgb" / "horse181.jpg").convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(data.images[0].numpy(), np.asarray(image).transpose(2, 0, 1))
    grey = np.asarray(Image.open(SOURCE / "figure_ground" / "horse181.jpg").convert("L"))
    small = Image.fromarray((grey > 127).astype(np.float32)).resize((32, 32), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(data.masks[0].numpy(), (np.asarray(small) >= 0.5).astype(np.uint8))


def test_mask_threshold_is_128_before_resizing_and_rounding_at_one_half():
    image = png(np.full((8, 8, 3), 90))
    _, below = preprocess_pair(Path("i.png"), image, Path("m.png"), png(np.full((8, 8), 127)), size=4)
    _, at = preprocess_pair(Path("i.png"), image, Path("m.png"), png(np.full((8, 8), 128)), size=4)
    assert below.sum() == 0 and at.min() == 1 and at.shape == (4, 4)
    # grey 130 with every fourth column black: thresholded first, the horse fraction shrinks to
    # 0.71-0.82 (horse after rounding); resizing the grey levels first would give 93-107 < 128
    stripes = np.full((8, 8), 130)
    stripes[:, 3::4] = 0
    grey_first = np.asarray(Image.fromarray(stripes.astype(np.uint8)).resize((2, 2), Image.Resampling.BILINEAR))
    assert grey_first.max() < 128
    picture, mask = preprocess_pair(Path("i.png"), image, Path("m.png"), png(stripes), size=2)
    assert mask.min() == 1 and picture.shape == (3, 2, 2) and picture.dtype == np.uint8


def test_a_mask_with_another_aspect_ratio_is_an_error_naming_both_files():
    with pytest.raises(DataError, match=r"m\.png.*20 x 20.*i\.png \(40 x 20\)"):
        preprocess_pair(Path("i.png"), png(np.zeros((20, 40, 3))), Path("m.png"), png(np.zeros((20, 20))), 4)


@needs_data
def test_corrupt_or_missing_files_are_errors_naming_the_file(tmp_path):
    source = copy_source(tmp_path, [1, 2, 181, 201])
    limit = {"train": 2, "validation": 1, "test": 1}
    truncated = source / "rgb" / "horse002.jpg"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    with pytest.raises(DataError, match=r"rgb/horse002\.jpg: not a readable image"):
        make(source=str(source), limit=limit).prepare()
    shutil.copy(SOURCE / "rgb" / "horse002.jpg", truncated)
    (source / "figure_ground" / "horse181.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"figure_ground/horse181\.jpg: not a readable image"):
        make(source=str(source), limit=limit).prepare()
    shutil.copy(SOURCE / "figure_ground" / "horse181.jpg", source / "figure_ground")
    (source / "rgb" / "horse201.jpg").unlink()
    with pytest.raises(DataError, match=r"rgb/horse201\.jpg: image missing \(its mask .*horse201\.jpg exists\)"):
        make(source=str(source), limit=limit).prepare()
    with pytest.raises(DataError, match=r"figure_ground/horse003\.jpg: mask missing"):
        shutil.copy(SOURCE / "rgb" / "horse003.jpg", source / "rgb")
        make(source=str(source), limit={"train": 3, "validation": 0, "test": 0}).prepare()


# noise ----------------------------------------------------------------------------------------
@needs_data
def test_noise_is_a_function_of_seed_split_epoch_and_file_number():
    train = make(limit=LIMIT).dataset("train")
    first = items(train)
    assert torch.equal(items(make(limit=LIMIT).dataset("train"))["y"], first["y"])  # reproducible
    assert torch.equal(items(train, [2, 0])["y"][1], first["y"][0])  # independent of the batch
    wider = make(limit={"train": 5, "validation": 1, "test": 1}).dataset("train")
    assert torch.equal(items(wider, [1])["y"][0], first["y"][1])  # keyed by file number, not position
    train.set_epoch(1)
    second = items(train)
    assert not torch.equal(second["y"], first["y"]) and not torch.equal(second["x"], first["x"])
    assert torch.equal(second["mask"], first["mask"])
    train.set_epoch(0)
    assert torch.equal(items(train)["y"], first["y"])  # a resumed epoch sees the same noise
    other_seed = make(limit=LIMIT, noise_seed=1).dataset("train")
    assert not torch.equal(items(other_seed)["y"], first["y"])


@needs_data
def test_noise_is_fixed_for_evaluation_and_for_training_without_fresh_noise():
    validation = make(limit=LIMIT).dataset("validation")
    fixed = make(limit=LIMIT, fresh_noise=False).dataset("train")
    before = items(validation), items(fixed)
    validation.set_epoch(3), fixed.set_epoch(3)
    after = items(validation), items(fixed)
    for b, a in zip(before, after, strict=True):
        assert torch.equal(a["y"], b["y"]) and torch.equal(a["x"], b["x"])
    fresh = items(make(limit=LIMIT).dataset("train"))
    assert torch.equal(fresh["y"], before[1]["y"])  # epoch 0 is the same draw either way
    assert not torch.equal(items(make(limit=LIMIT).dataset("test"))["y"][:, 0, 0], before[0]["y"][:, 0, 0])


# cache ----------------------------------------------------------------------------------------
@needs_data
def test_the_cache_is_reused_and_keyed_by_content_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "cache"))
    source = copy_source(tmp_path, [1, 181, 201])
    limit = {"train": 1, "validation": 1, "test": 1}
    task = make(source=str(source), limit=limit)
    task.prepare()
    assert task.cache_dir().parent == tmp_path / "cache" / "weizmann_horse"
    monkeypatch.setattr(module, "preprocess_pair", lambda *a, **k: pytest.fail("converted twice"))
    again = make(source=str(source), limit=limit)
    again.prepare()
    assert again.cache_dir() == task.cache_dir() and len(again.dataset("test")) == 1
    monkeypatch.undo()
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "cache"))
    assert make(source=str(source), limit=limit, size=64).cache_dir() != task.cache_dir()
    shutil.copy(SOURCE / "figure_ground" / "horse002.jpg", source / "figure_ground" / "horse001.jpg")
    assert make(source=str(source), limit=limit).cache_dir() != task.cache_dir()  # content, not names
    assert sorted(p.name for p in task.cache_dir().parent.iterdir()) == [task.cache_dir().name]


# prediction, metrics, pictures --------------------------------------------------------------------
def test_prediction_rule_adds_one_half_averages_channels_rounds_and_clips():
    y = torch.tensor([-0.5, 0.49, 0.0, 2.0, -3.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5).clone()
    assert predicted_mask(y).tolist() == [[[0, 1, 0, 1, 0]]]  # 0.5 rounds half to even: 0
    y[0, 0, 0, 0] = 1.0  # channel mean (1.5 + 0 + 0) / 3 = 0.5 -> 0; then 2.5 / 3 -> 1
    assert predicted_mask(y)[0, 0, 0].item() == 0
    y[0, 1, 0, 0] = 1.0
    assert predicted_mask(y)[0, 0, 0].item() == 1
    with pytest.raises(ShapeError, match=r"\(B, 3, S, S\), got \(2, 1, 4, 4\)"):
        predicted_mask(torch.zeros(2, 1, 4, 4))


class Dummy(nn.Module):
    """predict: the true mask (centred) or all background; log_prob: minus the file number."""

    def __init__(self, perfect: bool, density: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.perfect, self.density, self.calls = perfect, density, []

    def predict(self, batch, samples=None, temperature=None, prefix=None, horizon=None):
        self.calls.append((samples, temperature))
        mask = batch["mask"][:, None].float().expand(-1, 3, -1, -1)
        return mask - 0.5 if self.perfect else torch.full_like(mask, -0.5)

    def log_prob(self, batch):
        if not self.density:
            raise NotImplementedError("no log_prob")
        return -batch["index"].double()

    def sample(self, batch, samples=None, temperature=1.0, prefix=None, horizon=None):
        if not self.density:
            raise NotImplementedError("no sample")
        return self.predict(batch) + 0.1 * torch.randn(samples, *batch["y"].shape)


@needs_data
def test_a_perfect_prediction_scores_one_and_the_nll_is_averaged_per_image():
    task = make(limit={"train": 1, "validation": 1, "test": 12})
    model = Dummy(perfect=True)
    metrics = task.evaluate(model, DataLoader(task.dataset("test"), batch_size=5))
    assert metrics == {"iou_class_mean_batch10": 1.0, "iou_class_mean_pooled": 1.0, "iou_foreground_pooled": 1.0,
                       "pixel_accuracy": 1.0, "nll_nats": pytest.approx(np.mean(range(201, 213)))}
    assert model.calls == [(10, 1.0)] * 3 and model.training
    task.evaluate(model, DataLoader(task.dataset("test"), batch_size=12), samples=3, temperature=0.5)
    assert model.calls[-1] == (3, 0.5)
    with pytest.raises(RecipeError, match="eval: .*unknown options.*horizon"):
        task.evaluate(model, [], horizon=3)


@needs_data
def test_all_background_scores_zero_foreground_iou_in_groups_of_ten_whatever_the_loader():
    task = make(limit={"train": 1, "validation": 1, "test": 12})
    data = task.dataset("test")
    masks = data.masks.long()
    background = 1 - masks.double().mean((1, 2))  # per image, the fraction of background pixels

    def group_mean(rows):  # all-background: background IoU = TN / (TN + FN), foreground IoU 0
        return (background[rows].mean().item() + 0.0) / 2

    expected = (group_mean(slice(0, 10)) + group_mean(slice(10, 12))) / 2
    per_image = confusion_counts(torch.zeros_like(masks), masks)
    assert class_mean_iou(per_image[:10].sum(0)).item() == pytest.approx(group_mean(slice(0, 10)))
    results = [
        task.evaluate(Dummy(perfect=False, density=False), DataLoader(data, batch_size=size, shuffle=shuffle))
        for size, shuffle in ((1, False), (4, True), (7, False), (12, True))
    ]
    for metrics in results:
        assert set(metrics) == set(task.metric_directions())
        assert math.isnan(metrics["nll_nats"])  # no log_prob
        assert metrics["iou_foreground_pooled"] == 0
        assert metrics["iou_class_mean_batch10"] == pytest.approx(expected)
        assert metrics["iou_class_mean_pooled"] == pytest.approx(background.mean().item() / 2)
        assert metrics["pixel_accuracy"] == pytest.approx(background.mean().item())
    assert expected != pytest.approx(background.mean().item() / 2)  # the grouping matters here
    duplicated = task.evaluate(Dummy(perfect=False), DataLoader(data, batch_size=4), gather=lambda r: torch.cat([r, r]))
    assert duplicated["iou_class_mean_batch10"] == pytest.approx(expected)  # each image counted once


@needs_data
def test_save_samples_writes_the_four_column_picture(tmp_path):
    task = make(limit=LIMIT)
    for model in (Dummy(perfect=True), Dummy(perfect=False, density=False)):
        path = task.save_samples(model, tmp_path / "pictures" / "samples.png", n=5, samples=3)
        with Image.open(path) as picture:
            width, height = picture.size
        assert path.is_file() and width > 3 * 64 and height > 2 * 64  # 2 validation images, 4 columns
    with pytest.raises(RecipeError, match="unknown options"):
        task.save_samples(model, tmp_path / "x.png", colour=True)


@needs_data
def test_module_docstring_example_runs():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@needs_data
def test_trivial_baselines_of_the_benchmark_script():
    """benchmarks/horse_baselines.py: all-background scores the background IoU alone (= pixel accuracy,
    no false positives) and the mean mask is the thresholded training mean."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "horse_baselines.py"
    spec = importlib.util.spec_from_file_location("horse_baselines", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    task = make(limit=LIMIT)
    task.prepare()
    train = items(task.dataset("train"))["mask"].double()
    mean_mask = script.training_mean_mask(task)
    assert torch.equal(mean_mask, (train.mean(0) >= 0.5).long()) and 0 < mean_mask.sum() < mean_mask.numel()
    truth = items(task.dataset("test"))["mask"].double()
    background = 1 - float(truth.mean())
    metrics = task.evaluate(script.ConstantMask(torch.zeros_like(mean_mask)), DataLoader(task.dataset("test"), batch_size=2))
    assert metrics["iou_foreground_pooled"] == 0 and metrics["pixel_accuracy"] == pytest.approx(background)
    assert metrics["iou_class_mean_pooled"] == pytest.approx(background / 2) and math.isnan(metrics["nll_nats"])
    metrics = task.evaluate(script.ConstantMask(mean_mask), DataLoader(task.dataset("test"), batch_size=2))
    hit = (truth == mean_mask.double()).double().mean()
    assert metrics["pixel_accuracy"] == pytest.approx(float(hit))
