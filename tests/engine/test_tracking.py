"""Experiment tracking (train.log_with) and the per-step callback: TensorBoard's event files, read
back with TensorBoard's own reader, hold the numbers of the JSONL files, the flattened recipe and
the samples picture; a resumed run's events continue without doubles; a missing or unknown
tracker is one RecipeError at train.log_with; on_step sees every step."""

import doctest
import importlib.util
import json

import numpy as np
import pytest
import yaml

from eddies.core import RecipeError, load_recipe
from eddies.core.recipe import TRACKERS
from eddies.engine import Trainer, progress, tracking
from eddies.engine.metrics import MetricsLog
from eddies.engine.tracking import PACKAGES, hyperparameters
from tests.command_line import TINY, run_app

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402


def tiny(*overrides):
    return load_recipe(TINY, ["train.epochs=1", "train.log_with=[tensorboard]", *overrides])


def events(run_dir):
    """Every TensorBoard event of the run (the scalars' folder), read as TensorBoard reads it."""
    accumulator = EventAccumulator(str(run_dir / "tensorboard" / "tiny_synthetic"),
                                   size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator, tag):
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def as_float32(records, key):
    return [(r["step"], float(np.float32(r[key]))) for r in records if key in r]


def test_tensorboard_holds_the_jsonl_numbers_the_recipe_and_the_samples(tmp_path):
    recipe = tiny()
    Trainer(recipe, tmp_path).fit()
    log, tb = MetricsLog(tmp_path), events(tmp_path)
    steps, evals = log.read("steps"), log.read("evals")
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "nll", "lr", "grad_norm", "samples_per_s", "epoch", "nonfinite"):
        assert scalars(tb, f"train/{key}") == as_float32(steps, key), key
    assert len(evals) == 1 and {"val_loss", "val_nll", "val_test_mse", "train_loss"} <= evals[0].keys()
    for key in evals[0].keys() - {"step"}:
        assert scalars(tb, f"eval/{key}") == as_float32(evals, key), key

    [image] = tb.Images("samples")
    import matplotlib.image
    height, width = matplotlib.image.imread(tmp_path / "samples.png").shape[:2]
    assert (image.step, image.height, image.width) == (6, height, width)

    hparams_dirs = [p.parent for p in (tmp_path / "tensorboard" / "tiny_synthetic").glob("*/events.out.*")]
    assert len(hparams_dirs) == 1
    session = EventAccumulator(str(hparams_dirs[0]))
    session.Reload()
    content = session.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    logged = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    flat = hyperparameters(recipe.to_dict())
    assert logged["train.optimizer.lr"].number_value == 0.05 == flat["train.optimizer.lr"]
    assert logged["task.type"].string_value == "synthetic_regression@1"
    assert logged["train.log_with"].string_value == '["tensorboard"]'
    assert set(logged) == {k for k, v in flat.items() if v is not None}
    [stored] = (tmp_path / "tensorboard" / "tiny_synthetic").glob("*/hparams.yml")
    assert yaml.safe_load(stored.read_text()) == flat


class Crash:
    """Fail after step ``at`` (its records and events are written; the checkpoint is older)."""

    def __init__(self, at):
        self.at = at

    def on_step(self, trainer, step, values):
        if step == self.at:
            raise RuntimeError("crash")


def test_a_resumed_run_continues_the_events_without_doubles(tmp_path):
    with pytest.raises(RuntimeError, match="crash"):
        Trainer(tiny("train.epochs=2"), tmp_path, callbacks=[Crash(9)]).fit()  # checkpoint at step 6
    Trainer(tiny("train.epochs=2"), tmp_path, resume="auto").fit()
    steps = MetricsLog(tmp_path).read("steps")
    assert [r["step"] for r in steps] == list(range(1, 13))
    tb = events(tmp_path)
    assert scalars(tb, "train/loss") == as_float32(steps, "loss")
    assert scalars(tb, "eval/val_loss") == as_float32(MetricsLog(tmp_path).read("evals"), "val_loss")


def test_hyperparameters_flatten_mappings_and_lists_of_mappings_keep_other_lists_whole():
    tree = {"seed": 1, "model": {"flow": {"layers": [{"type": "a", "hidden": [64, 64]}, {"type": "b"}]},
                                 "encoder": None}, "eval": {}, "train": {"log_with": ["tensorboard"]}}
    assert hyperparameters(tree) == {
        "seed": 1, "model.flow.layers.0.type": "a", "model.flow.layers.0.hidden": "[64, 64]",
        "model.flow.layers.1.type": "b", "model.encoder": None, "eval": "{}", "train.log_with": '["tensorboard"]'}


def test_every_tracker_name_has_its_packages():
    assert tuple(PACKAGES) == TRACKERS


def test_an_unknown_tracker_is_one_recipe_error_at_train_log_with(tmp_path, monkeypatch, capsys):
    with pytest.raises(RecipeError) as err:
        load_recipe(TINY, ["train.log_with=[tensorbord]"])
    assert err.value.path == "train.log_with" and len(err.value.problems) == 1
    assert err.value.message == ("unknown tracker 'tensorbord'. Did you mean 'tensorboard'? "
                                 "Trackers: tensorboard, wandb, mlflow")
    assert load_recipe(TINY, ["train.log_with=tensorboard"]).train.log_with == ["tensorboard"]
    from eddies.engine.cli import train_main
    code, _, stderr = run_app(train_main, [f"recipe={TINY}", "train.log_with=mlfow", f"run_dir={tmp_path}"],
                              monkeypatch, capsys)
    assert code == 2 and stderr == ("error: train.log_with: unknown tracker 'mlfow'. Did you mean 'mlflow'? "
                                    "Trackers: tensorboard, wandb, mlflow (from the command-line override "
                                    "train.log_with=mlfow)\n")


def test_a_tracker_not_installed_is_one_recipe_error_before_anything_is_written(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(RecipeError) as err:
        Trainer(tiny("train.log_with=[tensorboard, wandb]"), tmp_path / "run")
    assert err.value.path == "train.log_with"
    assert str(err.value) == ("train.log_with: tracker(s) not installed: wandb (.venv/bin/pip install wandb); "
                              "or remove them from train.log_with")
    assert not (tmp_path / "run").exists()


class Steps:
    def __init__(self, stop_at=None):
        self.seen, self.evaluations, self.stop_at = [], [], stop_at

    def on_step(self, trainer, step, values):
        self.seen.append((step, values))
        if step == self.stop_at:
            trainer.request_stop("enough steps")

    def on_evaluate(self, trainer, metrics, checkpoint_dir):
        self.evaluations.append(metrics["step"])


def test_on_step_sees_every_step_with_the_logged_values(tmp_path):
    steps = Steps()
    Trainer(load_recipe(TINY, ["train.epochs=1"]), tmp_path, callbacks=[steps]).fit()
    records = MetricsLog(tmp_path).read("steps")  # log_every: 1, so one record per step
    assert [s for s, _ in steps.seen] == [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for (_, values), record in zip(steps.seen, records, strict=True):
        assert values == {k: record[k] for k in ("loss", "nll", "grad_norm")}
    assert steps.evaluations == [6]


def test_a_stop_requested_by_on_step_ends_the_run_at_the_next_evaluation(tmp_path):
    steps = Steps(stop_at=5)
    result = Trainer(load_recipe(TINY, ["train.epochs=2", "train.eval_every=4"]), tmp_path, callbacks=[steps]).fit()
    assert (result["step"], result["stopped"]) == (8, "enough steps")
    assert steps.evaluations == [4, 8]
    assert json.loads((tmp_path / "result.json").read_text())["stopped"] == "enough steps"


@pytest.mark.parametrize("module", [tracking, progress])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
