"""Task metrics during training, the monitored metric, val_nll only for likelihoods, set_progress."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from eddies.core import Model, RecipeError, get_registry, register
from eddies.core.registry import ComponentConfig
from eddies.engine import Trainer
from eddies.models import GaussianRegression
from eddies.tasks.synthetic import SyntheticRegression
from tests.engine.conftest import tiny_recipe

# validation score the scored task reports after each number of optimizer steps (eval_every=2)
SCORES = {2: 1.0, 4: 3.0, 6: 2.0, 8: 2.5, 10: 2.9, 12: 1.0, 14: 0.5, 16: 0.4}


class ScoredTask(SyntheticRegression):
    """synthetic_regression with one metric to maximise, scripted by the model's training progress."""

    def metric_directions(self):
        return {"score": "max"}

    def evaluate(self, model, loader, **options):
        for batch in loader:  # the trainer hands over the validation split on the model's device
            assert batch["x"].device == next(model.parameters()).device
        return {"score": SCORES[model.trained_steps]}


class RandomScoreTask(SyntheticRegression):
    """A metric drawn from every global generator (as sampling-based metrics do)."""

    def metric_directions(self):
        return {"draw": "min"}

    def evaluate(self, model, loader, **options):
        random.random(), np.random.rand(5)
        return {"draw": float(torch.rand(()))}


class PlainTask(SyntheticRegression):
    """No task metrics at all."""

    def metric_directions(self):
        return {}


class ClashTask(SyntheticRegression):
    def metric_directions(self):
        return {"nll": "min"}

    def evaluate(self, model, loader, **options):
        return {"nll": 0.0}


class NoisyRegression(GaussianRegression):
    """Training draws from torch's global generator (target noise), so a perturbed stream shows."""

    def loss(self, batch):
        if self.training and torch.is_grad_enabled():
            batch = {**batch, "y": batch["y"] + 0.1 * torch.randn_like(batch["y"])}
        return super().loss(batch)


class MSEModel(Model):
    """A point predictor trained on squared error: not a likelihood, so its loss has no ``nll``."""

    def __init__(self, data):
        super().__init__(data)
        (x_dim,), (y_dim,) = data.condition_shape, data.target_shape
        self.linear = nn.Linear(x_dim, y_dim)

    def loss(self, batch):
        mse = (self.linear(batch["x"]) - batch["y"]).pow(2).mean()
        return {"loss": mse, "mse": mse.detach()}


class ProgressRecorder(GaussianRegression):
    def __init__(self, data):
        super().__init__(data)
        self.calls: list[tuple[int, int | None]] = []

    def set_progress(self, step, total_steps):
        super().set_progress(step, total_steps)
        self.calls.append((step, total_steps))


@pytest.fixture(autouse=True)
def components():
    with get_registry("models").scoped(), get_registry("tasks").scoped():
        config = get_registry("tasks").get("synthetic_regression").config
        for name, cls in (("scored", ScoredTask), ("random_score", RandomScoreTask), ("plain", PlainTask),
                          ("clash", ClashTask)):
            register("tasks", name, config=config, summary="test task")(cls)
        for name, cls in (("noisy_regression", NoisyRegression), ("mse_model", MSEModel),
                          ("progress_recorder", ProgressRecorder)):
            register("models", name, config=ComponentConfig, summary="test model")(cls)
        yield


def _evals(run):
    return [json.loads(line) for line in (run / "metrics" / "evals.jsonl").read_text().splitlines()]


def _recipe(train=None, task="scored", model="gaussian_regression"):
    """tiny_recipe with one of this file's tasks (the same synthetic data) and models."""
    return tiny_recipe(train, task={"type": task, "n_train": 96, "n_validation": 40, "n_test": 32},
                       model={"type": model})


def test_a_max_task_metric_drives_the_best_checkpoint_and_early_stopping(tmp_path):
    recipe = _recipe({"epochs": 3, "eval_every": 2, "monitor": {"metric": "val_score"},
                      "early_stopping": {"patience": 3}})
    calls = []

    class Callback:
        def on_evaluate(self, trainer, metrics, checkpoint_dir):
            calls.append(metrics["val_score"])

    trainer = Trainer(recipe, tmp_path, callbacks=[Callback()])
    result = trainer.fit()
    # mode max from the task's declared direction: best 3.0 at step 4, then 3 evaluations below it
    assert result["best_val_score"] == 3.0 and result["best_step"] == 4
    assert result["step"] == 10 and result["stopped"].startswith("early stopping: val_score")
    assert trainer.best_checkpoint.name == "step-000004"
    assert [e["val_score"] for e in _evals(tmp_path)] == calls == [1.0, 3.0, 2.0, 2.5, 2.9]
    assert "val_nll" in _evals(tmp_path)[0]  # gaussian_regression is a likelihood


def test_the_recipe_mode_overrides_the_task_direction(tmp_path):
    recipe = _recipe({"epochs": 3, "eval_every": 2, "monitor": {"metric": "val_score", "mode": "min"},
                      "early_stopping": {"patience": 2}})
    result = Trainer(recipe, tmp_path).fit()
    assert (result["best_step"], result["step"]) == (2, 6)


def test_task_metrics_every_k_evaluations_and_at_the_last_one(tmp_path):
    recipe = _recipe({"epochs": 2, "eval_every": 2, "task_eval_every": 2, "monitor": {"metric": "val_score"}})
    evals = _evals(_run(recipe, tmp_path))
    assert [e["step"] for e in evals if "val_score" in e] == [4, 8, 12]
    assert all("val_loss" in e for e in evals)
    recipe = _recipe({"epochs": 2, "eval_every": 4, "task_eval_every": None})
    assert [e["step"] for e in _evals(_run(recipe, tmp_path / "end")) if "val_score" in e] == [12]


def test_early_stopping_on_an_evaluation_without_task_metrics_computes_them(tmp_path):
    recipe = _recipe({"epochs": 3, "eval_every": 2, "task_eval_every": 3,
                      "early_stopping": {"metric": "val_nll", "mode": "max", "patience": 1}})
    evals = _evals(_run(recipe, tmp_path))
    assert [e["step"] for e in evals] == [2, 4]  # val_nll falls, so the second evaluation stops
    assert "val_score" not in evals[0] and evals[-1]["val_score"] == SCORES[4]


def _run(recipe, run_dir, **kwargs):
    Trainer(recipe, run_dir, **kwargs).fit()
    return run_dir


def _weights(run):
    folder = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    return safetensors.torch.load_file(folder / "model.safetensors")


def test_task_metrics_leave_the_training_streams_alone_and_are_reproducible(tmp_path):
    train = {"epochs": 2, "eval_every": 3}
    with_metrics = _run(_recipe(train, task="random_score", model="noisy_regression"), tmp_path / "a")
    without = _run(_recipe(train, task="plain", model="noisy_regression"), tmp_path / "b")
    for name, value in _weights(without).items():
        assert torch.equal(value, _weights(with_metrics)[name]), name
    draws = [e["val_draw"] for e in _evals(with_metrics)]
    assert len(set(draws)) == len(draws) == 4  # seeded per step: each evaluation its own draw
    again = _run(_recipe(train, task="random_score", model="noisy_regression"), tmp_path / "c")
    assert [e["val_draw"] for e in _evals(again)] == draws
    assert [e["val_nll"] for e in _evals(again)] == [e["val_nll"] for e in _evals(without)]


def test_task_metrics_of_a_resumed_run_equal_the_uninterrupted_ones(tmp_path):
    train = {"epochs": 2, "eval_every": 3}
    whole = _evals(_run(_recipe(train, task="random_score", model="noisy_regression"), tmp_path / "whole"))
    first = _recipe({**train, "epochs": 1}, task="random_score", model="noisy_regression")
    _run(first, tmp_path / "part")
    _run(_recipe(train, task="random_score", model="noisy_regression"), tmp_path / "part", resume="auto")
    assert _evals(tmp_path / "part") == whole


def test_a_model_that_is_not_a_likelihood_has_no_val_nll(tmp_path):
    recipe = _recipe({"epochs": 1, "early_stopping": {"patience": 2}}, task="plain", model="mse_model")
    result = Trainer(recipe, tmp_path).fit()
    assert "val_nll" not in result and "val_loss" in result and result["val_mse"] == result["val_loss"]
    assert result["best_val_loss"] == result["val_loss"]  # the default monitor: val_loss
    assert all("val_nll" not in e for e in _evals(tmp_path))
    with pytest.raises(RecipeError, match=r"train.early_stopping.metric: metric 'val_nll' is not computed; "
                       r"evaluation gives epoch, nonfinite_steps, step, train_grad_norm, train_loss, train_mse, "
                       r"val_loss, val_mse$"):
        Trainer(_recipe({"early_stopping": {"metric": "val_nll"}}, task="plain", model="mse_model"), tmp_path / "b")


def test_an_unknown_monitored_metric_fails_before_training_listing_what_exists(tmp_path):
    with pytest.raises(RecipeError, match=r"train.monitor.metric: metric 'val_scor' is not computed; "
                       r"evaluation gives epoch, nonfinite_steps, step, train_grad_norm, train_loss, train_nll, "
                       r"val_loss, val_nll, val_score$"):
        Trainer(_recipe({"monitor": {"metric": "val_scor"}}), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_monitor_and_early_stopping_must_name_one_metric():
    with pytest.raises(RecipeError, match=r"train: early_stopping.metric='val_loss' differs from "
                       r"monitor.metric='val_score'"):
        _recipe({"monitor": {"metric": "val_score"}, "early_stopping": {"metric": "val_loss"}})
    recipe = tiny_recipe({"early_stopping": {"metric": "val_nll", "patience": 3}})  # frmdn_mnist's form
    assert recipe.train.early_stopping.metric == "val_nll" and recipe.train.monitor.metric is None


def test_a_task_metric_named_like_a_loss_entry_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"task: task 'clash' declares metrics whose names \['val_nll'\]"):
        Trainer(_recipe({"epochs": 1}, task="clash"), tmp_path).fit()


def test_set_progress_before_every_step_and_evaluation_and_after_resume(tmp_path):
    recipe = _recipe({"epochs": 2}, task="plain", model="progress_recorder")
    trainer = Trainer(recipe, tmp_path)
    trainer.fit()
    total = 12
    expected = [(k, total) for k in range(6)] + [(6, total)] + [(k, total) for k in range(6, 12)] + [(12, total)]
    assert trainer.model.calls == expected
    assert trainer.model.progress == 1.0
    first = next(p for p in (tmp_path / "checkpoints").glob("step-000006"))
    resumed = Trainer(recipe, tmp_path / "resumed", resume=first)
    assert resumed.model.calls == [(6, total)] and resumed.model.progress == 0.5
    resumed.fit()
    assert resumed.model.calls == [(6, total)] + expected[7:]


def test_a_task_metric_gets_its_own_panel_in_the_curves(tmp_path, monkeypatch):
    from eddies.engine import metrics

    _run(_recipe({"epochs": 1, "eval_every": 2, "monitor": {"metric": "val_score"}}), tmp_path)
    drawn = []
    close = metrics.plt.close
    monkeypatch.setattr(metrics.plt, "close", lambda fig: (drawn.append(fig), close(fig)))
    assert metrics.plot_curves(tmp_path).read_bytes()[:4] == b"\x89PNG"
    panels = {ax.get_title(): ax for ax in drawn[0].axes}
    assert {"val_nll", "val_score"} <= set(panels)
    xs, ys = panels["val_score"].lines[0].get_data()
    assert list(xs) == [2, 4, 6] and list(ys) == [SCORES[2], SCORES[4], SCORES[6]]
