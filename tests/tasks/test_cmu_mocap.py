"""Task cmu_mocap on the real CMU files: globbing, 25 fps, normalisation, protocol windows, cache, metrics."""

import doctest
import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import eddies.tasks.cache
import eddies.tasks.cmu_mocap as module
from eddies.core import TASKS, DataError, RecipeError, ShapeError, build
from eddies.tasks.cmu_mocap import action_files, default_source, plot_mpjpe_curves, window_starts
from eddies.tasks.cmu_skeleton import KEPT_JOINTS, axis_angle_error, forward_kinematics, mpjpe

SOURCE = default_source()
REPOSITORY = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(SOURCE is None, reason="../shared/data/cmu_mocap is not available")
LIMIT = {"train": 4, "validation": 3, "test": 3}
ACTIONS = ("basketball", "walking")


pytestmark = pytest.mark.usefixtures("module_data_dir")


def make(**cfg):
    """The task without the static channels' jitter (exact normalised values), unless asked."""
    return build({"type": "cmu_mocap", "static_noise": 0.0, **cfg}, "tasks")


def read(path):
    """An independent reading of a source file: (R, 38, 3) float64 exp maps at 50 fps."""
    with gzip.open(path, "rt") as f:
        values = np.array([[float(v) for v in line.split(",")] for line in f if line.strip()])
    assert values.shape[1] == 117
    return values[:, 3:].reshape(-1, 38, 3)


def raw(split, action, number):
    part = "test" if split == "test" else "train"
    return read(SOURCE / part / action / f"{action}_{number}.txt.gz")


def items(data, rows=None):
    batch = data.__getitems__(list(range(len(data))) if rows is None else rows)
    return {k: torch.stack([item[k] for item in batch]) for k in batch[0]}


def copy_source(tmp_path, action="walking", train=(1, 2, 3), test=(1,), rename=None):
    """A temporary source with the real files of ``action`` (``rename``: source number -> new number)."""
    rename = rename or {}
    for part, numbers in (("train", train), ("test", test)):
        folder = tmp_path / "src" / part / action
        folder.mkdir(parents=True, exist_ok=True)
        for n in numbers:
            shutil.copy(SOURCE / part / action / f"{action}_{n}.txt.gz",
                        folder / f"{action}_{rename.get((part, n), n)}.txt.gz")
    return tmp_path / "src"


# source, files, splits ---------------------------------------------------------------------------
@needs_data
def test_default_source_is_the_shared_folder_beside_the_repository(monkeypatch):
    assert SOURCE == (REPOSITORY.parent / "shared" / "data" / "cmu_mocap").resolve()
    monkeypatch.chdir(REPOSITORY / "packages")
    assert default_source() == SOURCE


@needs_data
def test_files_are_globbed_and_sorted_by_number_and_the_highest_training_file_is_validation(tmp_path):
    source = copy_source(tmp_path, train=(1, 2, 3, 4), rename={("train", 3): 10, ("train", 4): 9})
    (source / "train" / "walking" / "walking_notes.txt").write_text("not a frame file")
    assert [n for n, _ in action_files(source, "train", "walking")] == [1, 2, 9, 10]  # 10 after 9
    task = make(source=str(source), actions=["walking"])
    assert [(s, n) for s, _, n, _ in task._files()] == [
        ("train", 1), ("train", 2), ("train", 9), ("validation", 10), ("test", 1)]
    _, numbers, _, _ = task.split_files("validation")
    assert numbers.tolist() == [10]
    _, numbers, lengths, _ = task.split_files("train")
    assert numbers.tolist() == [1, 2, 9] and lengths.tolist() == [len(raw("train", "walking", n)) for n in (1, 2, 4)]


@needs_data
def test_frames_are_every_second_raw_frame_of_each_file():
    task = make(limit=LIMIT)
    for split, numbers in (("train", (1, 2, 3, 4)), ("validation", (5,)), ("test", (1,))):
        actions, got_numbers, lengths, frames = task.split_files(split)
        expected = [raw(split, a, n) for a in ACTIONS for n in numbers]
        assert actions.tolist() == [a for a in range(2) for _ in numbers]
        assert got_numbers.tolist() == list(numbers) * 2
        assert lengths.tolist() == [len(e) for e in expected]
        reference = np.concatenate([e[::2] for e in expected])  # 50 -> 25 fps
        assert frames.shape == reference.shape and frames.dtype == np.float32
        np.testing.assert_allclose(frames, reference, rtol=1e-6, atol=1e-7)
    assert len(frames) == (577 + 1) // 2 + (359 + 1) // 2  # the test files' 577 and 359 raw frames


@needs_data
def test_normalisation_uses_the_training_frames_only(tmp_path, monkeypatch):
    task = make(limit=LIMIT)
    frames = np.concatenate([raw("train", a, n)[::2] for a in ACTIONS for n in (1, 2, 3, 4)])
    values = frames[:, list(KEPT_JOINTS), :].transpose(0, 2, 1)  # (N, 3, 24)
    mean, std = values.mean(0), values.std(0)
    np.testing.assert_allclose(task.mean.numpy(), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(task.std.numpy(), np.where(std < 1e-4, 1.0, std), rtol=1e-12, atol=1e-12)
    assert task.mean.shape == task.std.shape == (3, 24)
    assert (std < 1e-4).any() and (std >= 1e-4).any()  # both branches of the floor occur
    with_validation = np.concatenate([frames, raw("validation", "walking", 5)[::2]])
    assert not np.allclose(mean, with_validation[:, list(KEPT_JOINTS)].transpose(0, 2, 1).mean(0))  # it matters
    item = items(task.dataset("test"), [0])
    start = task.dataset("test").windows["start"][0]
    test_values = raw("test", "basketball", 1)[::2][start: start + 25, list(KEPT_JOINTS)].transpose(0, 2, 1)
    np.testing.assert_allclose(item["x"][0].numpy(), (test_values - mean) / np.where(std < 1e-4, 1, std),
                               rtol=1e-5, atol=1e-5)
    # another test file: another cache, the same statistics
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "cache"))
    source = copy_source(tmp_path, train=(1, 2, 3))
    first = make(source=str(source), actions=["walking"])
    first.prepare()
    shutil.copy(SOURCE / "test" / "basketball" / "basketball_1.txt.gz", source / "test" / "walking" / "walking_1.txt.gz")
    second = make(source=str(source), actions=["walking"])
    second.prepare()
    assert second.cache_dir() != first.cache_dir()
    assert torch.equal(second.mean, first.mean) and torch.equal(second.std, first.std)
    assert len(second.dataset("test")) != len(first.dataset("test"))  # the test file did change


# windows --------------------------------------------------------------------------------------
def test_window_starts_follow_each_protocol():
    # training windows: stride 5 while start + 50 <= n (n = 100 frames from 199 raw)
    assert window_starts("train", 199, 25, 25, 5).tolist() == list(range(0, 51, 5))
    assert window_starts("all", 199, 25, 25).tolist() == list(range(51))
    assert window_starts("all", 97, 25, 25).tolist() == [] and window_starts("train", 97, 25, 25, 5).tolist() == []
    # motionflow: 150-raw-frame windows at raw stride 10 -> 25 fps starts 0, 5, ...
    assert window_starts("motionflow", 149, 25, 25).tolist() == []
    assert window_starts("motionflow", 150, 25, 25).tolist() == [0]
    assert window_starts("motionflow", 169, 25, 25).tolist() == [0, 5]
    assert window_starts("motionflow", 170, 25, 25).tolist() == [0, 5, 10]
    # ltd8: 8 successive draws of one fresh RandomState(1234567890), input idx + 25
    rng = np.random.RandomState(1234567890)
    idx = [rng.randint(0, 289 - 75) for _ in range(8)]
    assert window_starts("ltd8", 577, 25, 25).tolist() == [i + 25 for i in idx]
    assert window_starts("ltd8", 577, 10, 25).tolist() == [i + 40 for i in idx]  # LTD's own 10 input frames
    assert window_starts("ltd8", 577, 25, 25).tolist() == [i + 25 for i in idx]  # fresh per call (per file)


@needs_data
def test_validation_and_test_windows_of_every_protocol_on_the_real_files():
    task = make(protocols=["motionflow", "ltd8", "all"])
    for split, number, part in (("validation", 5, "train"), ("test", 1, "test")):
        windows = task.windows(split)
        for a, action in enumerate(ACTIONS):
            frames = read(SOURCE / part / action / f"{action}_{number}.txt.gz")
            n = len(frames[::2])
            starts = []
            for p in range(3):
                chosen = (windows["action"] == a) & (windows["protocol"] == p)
                assert (windows["number"][chosen] == number).all()
                starts.append(windows["start"][chosen].tolist())
            assert starts[0] == [j * 5 for j in range((len(frames) - 150) // 10 + 1)]
            rng = np.random.RandomState(1234567890)
            assert starts[1] == [rng.randint(0, n - 75) + 25 for _ in range(8)]
            assert starts[2] == list(range(n - 50 + 1))
    for stride, train in ((1, make().windows("train")), (5, make(train_stride=5).windows("train"))):
        for a, action in enumerate(ACTIONS):
            for number in (1, 2, 3, 4):
                n = len(raw("train", action, number)[::2])
                chosen = (train["action"] == a) & (train["number"] == number)
                assert train["start"][chosen].tolist() == list(range(0, n - 50 + 1, stride))
    assert set(train["protocol"].tolist()) == {0}


@needs_data
def test_limit_keeps_the_first_windows_of_each_action_and_protocol():
    full, limited = make().windows("test"), make(limit={"test": 3}).windows("test")
    for a in range(2):
        for p in range(2):
            chosen = (full["action"] == a) & (full["protocol"] == p)
            kept = (limited["action"] == a) & (limited["protocol"] == p)
            assert limited["start"][kept].tolist() == full["start"][chosen][:3].tolist()
    assert len(limited["start"]) == 12 and len(make(limit={"train": 0}).dataset("train")) == 0


# batches --------------------------------------------------------------------------------------
@needs_data
def test_items_have_the_declared_keys_and_shapes_and_hold_the_windows():
    task = make(limit=LIMIT, input_frames=10, output_frames=20, protocols=["ltd8"])
    spec = task.data_spec()
    assert "cmu_mocap" in TASKS and (spec.target, spec.condition) == ("y", "x")
    assert spec.shapes == {"x": (10, 3, 24), "y": (20, 3, 24), "y_raw": (20, 38, 3), "x_last_raw": (38, 3),
                           "action": (), "protocol": ()}
    mean, std = task.mean.numpy(), task.std.numpy()
    for split in ("train", "validation", "test"):
        data = task.dataset(split)
        batch = next(iter(DataLoader(data, batch_size=len(data))))
        assert {k: tuple(v.shape[1:]) for k, v in batch.items()} == spec.shapes
        assert batch["x"].dtype == batch["y_raw"].dtype == torch.float32 and batch["action"].dtype == torch.int64
        assert batch["action"].tolist() == [0] * LIMIT[split] + [1] * LIMIT[split]
        assert set(batch["protocol"].tolist()) == {0}
        for i in (0, len(data) - 1):
            w = {k: v[i] for k, v in data.windows.items()}
            frames = raw(split, ACTIONS[w["action"]], w["number"])[::2][w["start"]: w["start"] + 30]
            normalised = (frames[:, list(KEPT_JOINTS)].transpose(0, 2, 1) - mean) / std
            np.testing.assert_allclose(batch["x"][i].numpy(), normalised[:10], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(batch["y"][i].numpy(), normalised[10:], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(batch["y_raw"][i].numpy(), frames[10:], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(batch["x_last_raw"][i].numpy(), frames[9], rtol=1e-6, atol=1e-7)
    ltd = task.dataset("test").windows
    rng = np.random.RandomState(1234567890)
    assert ltd["start"][:3].tolist() == [rng.randint(0, 289 - 75) + 40 for _ in range(3)]


# cache ----------------------------------------------------------------------------------------
@needs_data
def test_the_cache_is_reused_and_keyed_by_content_and_actions(tmp_path, monkeypatch):
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "cache"))
    source = copy_source(tmp_path)
    task = make(source=str(source), actions=["walking"])
    task.prepare()
    assert task.cache_dir().parent == tmp_path / "cache" / "cmu_mocap"
    monkeypatch.setattr(module, "parse_frames", lambda *a, **k: pytest.fail("converted twice"))
    again = make(source=str(source), actions=["walking"], input_frames=10, protocols=["all"], limit={"test": 2})
    again.prepare()
    assert again.cache_dir() == task.cache_dir() and len(again.dataset("test")) == 2
    assert torch.equal(again.mean, task.mean)
    monkeypatch.undo()
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "cache"))
    shutil.copy(SOURCE / "train" / "walking" / "walking_4.txt.gz", source / "train" / "walking" / "walking_1.txt.gz")
    changed = make(source=str(source), actions=["walking"])
    assert changed.cache_dir() != task.cache_dir()  # content, not names
    assert not torch.equal(changed.mean, task.mean)
    assert sorted(p.name for p in task.cache_dir().parent.iterdir()) == sorted(
        {task.cache_dir().name, changed.cache_dir().name})


# settings and errors ---------------------------------------------------------------------------
@needs_data
def test_an_incomplete_action_is_one_recipe_error_listing_the_complete_ones(tmp_path):
    with pytest.raises(RecipeError, match=r"washwindow.*complete actions are: basketball, jumping, running, soccer, "
                                          r"walking") as error:
        make(actions=["basketball", "washwindow"]).prepare()
    assert error.value.path == "task.actions"
    with pytest.raises(RecipeError, match="nosuch"):
        make(actions=["nosuch"]).dataset("train")
    source = copy_source(tmp_path, train=(1,))  # one training file: none to hold out
    with pytest.raises(RecipeError, match=r"walking lack two or more training files.*complete actions are: none"):
        make(source=str(source), actions=["walking"]).prepare()


def test_bad_settings_are_recipe_errors_naming_the_key():
    for cfg, key, text in (
        ({"protocols": ["srnn"]}, "protocols", "motionflow"),
        ({"protocols": ["ltd8", "ltd8"]}, "protocols", "at most once"),
        ({"actions": []}, "actions", "at least 1"),
        ({"train_stride": 0}, "train_stride", "greater than or equal to 1"),
        ({"limit": {"val": 2}}, "limit", "validation"),
        ({"input_frames": 50, "output_frames": 30}, "protocols", "at most 75"),
        ({"input_frames": 60, "protocols": ["ltd8"]}, "protocols", "at most 50 input and 25 output"),
    ):
        with pytest.raises(RecipeError, match=text) as error:
            make(**cfg)
        assert key in error.value.path, (cfg, error.value.path)
    make(input_frames=60, output_frames=30, protocols=["all"])  # no limit for "all"


def test_a_missing_source_says_where_it_looked_and_how_to_set_it(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"nowhere has no folder train/.*task\.source=PATH"):
        make(source=str(tmp_path / "nowhere")).prepare()
    monkeypatch.setattr(eddies.tasks.cache, "search_roots", lambda: [tmp_path])
    with pytest.raises(DataError, match=r"looked for shared/data/cmu_mocap in .* and its parents.*task\.source"):
        make().prepare()


@needs_data
def test_damaged_or_short_files_are_data_errors_naming_the_file(tmp_path):
    source = copy_source(tmp_path)
    target = source / "train" / "walking" / "walking_2.txt.gz"
    target.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(DataError, match=r"walking_2\.txt\.gz: expected lines of 117 values"):
        make(source=str(source), actions=["walking"]).prepare()
    target.write_bytes(gzip.compress(b",".join([b"1"] * 116 + [b"nan"]) + b"\n"))
    with pytest.raises(DataError, match=r"walking_2\.txt\.gz: line 1 holds a non-finite value"):
        make(source=str(source), actions=["walking"]).prepare()
    target.write_bytes(b"plain text")
    with pytest.raises(DataError, match=r"walking_2\.txt\.gz: not a readable gzip file"):
        make(source=str(source), actions=["walking"]).prepare()
    shutil.copy(SOURCE / "train" / "walking" / "walking_2.txt.gz", target)
    short = source / "test" / "walking" / "walking_1.txt.gz"
    short.write_bytes(gzip.compress(b"".join([b",".join([b"0"] * 117) + b"\n"] * 150)))  # 75 frames at 25 fps
    task = make(source=str(source), actions=["walking"], protocols=["motionflow"])
    assert task.windows("test")["start"].tolist() == [0]  # 150 raw frames: one motionflow window
    with pytest.raises(DataError, match=r"test file walking_1 has 75 frames at 25 fps; protocol ltd8 needs more"):
        make(source=str(source), actions=["walking"], protocols=["ltd8"]).dataset("test")


# metrics --------------------------------------------------------------------------------------
class ZeroVelocity(nn.Module):
    """A predict-only model: the last input frame repeated (in the normalised space)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def predict(self, batch, samples=None, temperature=None, prefix=None, horizon=None):
        self.calls.append((samples, temperature))
        return batch["x"][:, -1:].expand(-1, batch["y"].shape[1], -1, -1)


def expected_zero_velocity(split, number, starts_of):
    """Per action, zero velocity's mean MPJPE and angle error per output frame (25,), from the raw file
    ``number`` of ``split`` and the window starts ``starts_of(raw frames)``."""
    result = {}
    for action in ACTIONS:
        frames = raw(split, action, number)
        starts = starts_of(len(frames))
        frames = torch.from_numpy(frames[::2])
        truth = torch.stack([frames[s + 25: s + 50] for s in starts])  # (W, 25, 38, 3)
        guess = truth.clone()
        last = torch.stack([frames[s + 24] for s in starts])
        guess[:, :, list(KEPT_JOINTS)] = last[:, None, list(KEPT_JOINTS)]
        result[action] = mpjpe(guess, truth).mean(0), axis_angle_error(guess, truth).mean(0)
    return result


def ltd8_starts(raw_frames):
    rng = np.random.RandomState(1234567890)
    return [rng.randint(0, (raw_frames + 1) // 2 - 75) + 25 for _ in range(8)]


@needs_data
def test_zero_velocity_scores_equal_an_independent_computation_at_every_horizon():
    task = make(limit={"train": 1}, protocols=["motionflow", "ltd8", "all"])
    model = ZeroVelocity()
    metrics = task.evaluate(model, DataLoader(task.dataset("test"), batch_size=32, shuffle=True))
    assert list(metrics) == list(task.metric_directions()) and set(task.metric_directions().values()) == {"min"}
    assert model.calls and set(model.calls) == {(10, None)}
    expected = {
        "motionflow": expected_zero_velocity("test", 1, lambda r: [5 * j for j in range((r - 150) // 10 + 1)]),
        "ltd8": expected_zero_velocity("test", 1, ltd8_starts),
        "all": expected_zero_velocity("test", 1, lambda r: range((r + 1) // 2 - 49)),
    }
    for protocol, per_action in expected.items():
        for ms, frame in zip((80, 160, 320, 400, 560, 1000), (2, 4, 8, 10, 14, 25), strict=True):
            for action, (error, angle) in per_action.items():
                assert metrics[f"mpjpe_{protocol}_{action}_{ms}ms"] == pytest.approx(error[frame - 1].item(), rel=1e-5)
                assert metrics[f"angle_error_{protocol}_{action}_{ms}ms"] == pytest.approx(
                    angle[frame - 1].item(), rel=1e-4, abs=1e-7)
            mean = np.mean([per_action[a][0][frame - 1].item() for a in ACTIONS])
            assert metrics[f"mpjpe_{protocol}_mean_{ms}ms"] == pytest.approx(mean, rel=1e-5)
        for action, (error, _) in per_action.items():
            assert metrics[f"mpjpe_{protocol}_{action}_avg"] == pytest.approx(error.mean().item(), rel=1e-5)
    assert 5 < metrics["mpjpe_motionflow_basketball_80ms"] < metrics["mpjpe_motionflow_basketball_1000ms"]
    assert metrics["mpjpe_all_walking_400ms"] != pytest.approx(metrics["mpjpe_motionflow_walking_400ms"], rel=1e-3)


@needs_data
def test_evaluate_options_missing_groups_and_a_wrong_prediction_shape():
    task = make(limit={"train": 1, "test": 2}, output_frames=10, protocols=["ltd8"])
    assert [name for name in task.metric_directions() if name.startswith("mpjpe_ltd8_walking_")] == [
        "mpjpe_ltd8_walking_80ms", "mpjpe_ltd8_walking_160ms", "mpjpe_ltd8_walking_320ms",
        "mpjpe_ltd8_walking_400ms", "mpjpe_ltd8_walking_avg"]  # horizons within 10 output frames
    data = task.dataset("test")
    model = ZeroVelocity()
    basketball_only = torch.utils.data.Subset(data, [0, 1])
    metrics = task.evaluate(model, DataLoader(basketball_only, batch_size=2), samples=3, temperature=0.5)
    assert model.calls == [(3, 0.5)]
    assert math.isnan(metrics["mpjpe_ltd8_walking_80ms"]) and metrics["mpjpe_ltd8_basketball_80ms"] > 0
    assert math.isnan(metrics["mpjpe_ltd8_mean_80ms"])  # a mean over actions needs every action
    with pytest.raises(RecipeError, match="eval: .*unknown options.*horizon"):
        task.evaluate(model, [], horizon=3)
    with pytest.raises(RecipeError, match="samples must be an integer"):
        task.evaluate(model, [], samples=0)
    with pytest.raises(DataError, match="no windows"):
        task.evaluate(model, [])

    class Wrong(ZeroVelocity):
        def predict(self, batch, **options):
            return batch["x"]  # 25 input frames, not 10 output frames

    with pytest.raises(ShapeError, match=r"\(B, T_out, 3, 24\) = \(2, 10, 3, 24\), got \(2, 25, 3, 24\)"):
        task.evaluate(Wrong(), DataLoader(basketball_only, batch_size=2))


# pictures -------------------------------------------------------------------------------------
class Perfect(ZeroVelocity):
    def predict(self, batch, samples=None, temperature=None, prefix=None, horizon=None):
        self.calls.append((samples, temperature))
        return batch["y"]


@needs_data
def test_save_samples_draws_windows_of_every_action_and_protocol_in_turn(tmp_path, monkeypatch):
    task = make(limit={"train": 1})
    drawn = []
    monkeypatch.setattr(module, "draw_stick_figures", lambda *args: drawn.append(args) or args[-1])
    model = Perfect()
    task.save_samples(model, tmp_path / "a.png", n=5, samples=2, temperature=0.5)
    past, truth, pred, labels, _ = drawn[-1]
    assert labels == ["basketball, motionflow, frame 0", f"basketball, ltd8, frame {ltd8_starts(577)[0]}",
                      "walking, motionflow, frame 0", f"walking, ltd8, frame {ltd8_starts(359)[0]}",
                      "basketball, motionflow, frame 5"]
    assert past.shape == (5, 25, 38, 3) and truth.shape == pred.shape == (5, 25, 38, 3) and model.calls == [(2, 0.5)]
    torch.testing.assert_close(pred, truth, rtol=0, atol=1e-3)  # a perfect prediction: the true positions
    frames = torch.from_numpy(raw("test", "basketball", 1)[::2])
    torch.testing.assert_close(truth[4], forward_kinematics(frames[30:55]), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(past[4, :, 3], forward_kinematics(frames[5:30])[:, 3], rtol=1e-5, atol=1e-3)
    task.save_samples(ZeroVelocity(), tmp_path / "b.png", n=2)
    _, truth, pred, _, _ = drawn[-1]
    legs = [2, 3, 4, 5, 8, 9, 10, 11]  # joints whose ancestors are all kept: frozen by zero velocity
    assert torch.allclose(pred[:, 0, legs], pred[:, -1, legs]) and not torch.allclose(truth[:, 0], truth[:, -1])
    with pytest.raises(RecipeError, match="unknown options.*colour"):
        task.save_samples(model, tmp_path / "x.png", colour=True)


@needs_data
def test_the_pictures_are_written(tmp_path):
    from PIL import Image

    task = make(limit={"train": 1, "test": 2})
    sizes = []
    for n in (1, 3):
        path = task.save_samples(ZeroVelocity(), tmp_path / "pictures" / f"samples{n}.png", n=n)
        with Image.open(path) as picture:
            sizes.append(picture.size)
    assert sizes[0][0] == sizes[1][0] > 5 * 64 and sizes[1][1] > 2 * sizes[0][1] - 100  # 7 columns, n rows
    metrics = task.evaluate(ZeroVelocity(), DataLoader(task.dataset("test"), batch_size=4))
    single = plot_mpjpe_curves(metrics, tmp_path / "curves" / "one.png")
    double = plot_mpjpe_curves({"zero velocity": metrics, "half": {k: v / 2 for k, v in metrics.items()}},
                               tmp_path / "curves" / "two.png")
    for path in (single, double):
        with Image.open(path) as picture:
            assert picture.size[0] > 3 * 150 and picture.size[1] > 2 * 150  # 2 protocols x (2 actions + mean)
    with pytest.raises(ValueError, match="no key mpjpe_<protocol>_<action>_<h>ms"):
        plot_mpjpe_curves({"val_loss": 1.0}, tmp_path / "none.png")


@needs_data
def test_module_docstring_example_runs():
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@needs_data
def test_static_channels_get_a_fixed_jitter_and_the_rest_stays_exact():
    """Channels constant in the training frames (no density) get N(0, static_noise^2) jitter in x
    and y, the same draw on every call and in overlapping windows; moving channels and the raw
    truth are exact."""
    exact = make(limit={"test": 3})
    jittered = make(limit={"test": 3}, static_noise=1e-3)
    static = exact.static
    assert 10 <= int(static.sum()) < 72 and (exact.std[static] == 1).all()
    a, b, again = exact.dataset("test"), jittered.dataset("test"), jittered.dataset("test")
    for i in range(3):
        for key in ("x", "y"):
            noise = b[i][key] - a[i][key]
            assert torch.equal(noise[:, ~static], torch.zeros_like(noise[:, ~static]))
            assert 0.5e-3 < noise[:, static].std().item() < 2e-3
            assert torch.equal(b[i][key], again[i][key])
        assert torch.equal(b[i]["y_raw"], a[i]["y_raw"]) and torch.equal(b[i]["x_last_raw"], a[i]["x_last_raw"])
    first, second = b[0], b[1]  # motionflow windows 5 frames apart share 45 frames
    shift = int(b.windows["start"][1] - b.windows["start"][0])
    frames_a, frames_b = torch.cat([first["x"], first["y"]]), torch.cat([second["x"], second["y"]])
    assert torch.equal(frames_a[shift:], frames_b[: len(frames_a) - shift])


@needs_data
def test_the_training_jitter_is_drawn_afresh_each_epoch_and_reproducibly():
    task = make(limit={"train": 2}, static_noise=1e-3)
    data, static = task.dataset("train"), task.static
    epoch0 = data[0]["y"].clone()
    data.set_epoch(1)
    epoch1 = data[0]["y"].clone()
    assert torch.equal(epoch1[:, ~static], epoch0[:, ~static])
    assert (epoch1[:, static] - epoch0[:, static]).abs().min() > 0
    data.set_epoch(0)
    assert torch.equal(data[0]["y"], epoch0)


@needs_data
def test_save_samples_draws_a_diverged_prediction_without_failing(tmp_path):
    """A rollout that went to inf or NaN (a model that diverged at long horizons) still gets its
    picture: the panels are sized by the input and the truth."""

    class Diverged(torch.nn.Module):
        def predict(self, batch, samples=None, temperature=None):
            y = batch["x"][:, -1:].expand(-1, 25, -1, -1).clone()
            y[:, 10:] = float("inf")
            y[:, 20:] = float("nan")
            return y

    path = make(limit={"test": 1}).save_samples(Diverged(), tmp_path / "diverged.png", n=2)
    assert path.read_bytes()[:4] == b"\x89PNG"
