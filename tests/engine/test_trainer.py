"""The trainer: schedule, metrics, resumption, accumulation, clipping, non-finite steps, errors."""

import json
import math

import pytest
import safetensors.torch
import torch

from eddies.core import CheckpointError, DataError, NonFiniteLossError, RecipeError
from eddies.engine import MetricsLog, Trainer
from tests.engine.conftest import tiny_recipe


class Recorder:
    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_evaluate(self, trainer, metrics, checkpoint_dir):
        assert (checkpoint_dir / "state.json").is_file()  # written before the callback
        self.calls.append((dict(metrics), checkpoint_dir))
        if self.stop_at is not None and metrics["step"] >= self.stop_at:
            trainer.request_stop("test")


class Crash(Exception):
    pass


class CrashAfter:
    def __init__(self, step):
        self.step = step

    def on_evaluate(self, trainer, metrics, checkpoint_dir):
        if metrics["step"] >= self.step:
            raise Crash


def _weights(run):
    return safetensors.torch.load_file(run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
                                       / "model.safetensors")


def test_fit_writes_metrics_curves_samples_and_learns(tmp_path):
    recorder = Recorder()
    recipe = tiny_recipe({"epochs": 4, "log_every": 2, "samples": True})
    result = Trainer(recipe, tmp_path, callbacks=[recorder]).fit()
    log = MetricsLog(tmp_path)
    steps, evals = log.read("steps"), log.read("evals")
    assert [r["step"] for r in steps] == list(range(2, 25, 2))
    assert [r["step"] for r in evals] == [6, 12, 18, 24]
    assert [c[0]["step"] for c in recorder.calls] == [6, 12, 18, 24]
    assert recorder.calls[-1][1].name == "step-000024"
    assert evals[-1]["val_nll"] < evals[0]["val_nll"] - 0.5
    assert result["val_nll"] == evals[-1]["val_nll"] and result["stopped"] == "completed"
    assert json.loads((tmp_path / "result.json").read_text()) == result
    for png in ("curves.png", "samples.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the train_loss of an evaluation is the mean of the step losses since the previous one
    per_step = Trainer(tiny_recipe({"epochs": 1}), tmp_path / "b").fit()
    step_losses = [r["loss"] for r in MetricsLog(tmp_path / "b").read("steps")]
    assert per_step["train_loss"] == pytest.approx(sum(step_losses) / 6, rel=1e-12)


def test_validation_metric_is_the_exact_per_sample_mean(tmp_path):
    trainer = Trainer(tiny_recipe({"epochs": 1, "eval_batch_size": 7}), tmp_path)
    metrics = trainer.evaluate()
    val = trainer.val_set[:]
    with torch.no_grad():
        expected = -trainer.model.log_prob(val).double().mean().item()
    assert metrics["val_nll"] == pytest.approx(expected, rel=1e-6)  # 40 samples in batches 7,...,5


def test_resume_after_a_crash_ends_bitwise_like_an_uninterrupted_run(tmp_path):
    train = {"epochs": 3, "checkpoint_every": 4, "scheduler": {"type": "cosine", "warmup_steps": 2}}
    whole = Trainer(tiny_recipe(train), tmp_path / "whole").fit()
    with pytest.raises(Crash):  # dies after the evaluation + checkpoint at step 6
        Trainer(tiny_recipe(train), tmp_path / "cut", callbacks=[CrashAfter(6)]).fit()
    resumed = Trainer(tiny_recipe(train), tmp_path / "cut", resume="auto").fit()
    assert resumed == whole
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    drop = lambda rs: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rs]  # noqa: E731
    assert drop(MetricsLog(tmp_path / "cut").read("steps")) == drop(MetricsLog(tmp_path / "whole").read("steps"))


def test_resume_mid_epoch_from_an_explicit_checkpoint(tmp_path):
    train = {"epochs": 2, "checkpoint_every": 4}
    whole = Trainer(tiny_recipe(train), tmp_path / "whole").fit()
    resumed = Trainer(tiny_recipe(train), tmp_path / "other",
                      resume=tmp_path / "whole" / "checkpoints" / "step-000008").fit()
    assert resumed == whole


def test_resume_with_another_model_is_refused(tmp_path):
    Trainer(tiny_recipe({"epochs": 1}), tmp_path).fit()
    other = tiny_recipe({"epochs": 1}, task={"type": "synthetic_regression", "n_train": 96, "x_dim": 3})
    with pytest.raises(CheckpointError, match="the recipe's task differs"):
        Trainer(other, tmp_path, resume="auto")


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    sgd = {"type": "sgd", "lr": 0.1}
    one = Trainer(tiny_recipe({"epochs": 1, "optimizer": sgd}), tmp_path / "a")
    one.fit()
    four = Trainer(tiny_recipe({"epochs": 1, "optimizer": sgd, "grad_accum": 4}), tmp_path / "b")
    four.fit()
    for p, q in zip(one.model.parameters(), four.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not torch.equal(one.model.mean.weight, Trainer(tiny_recipe(), tmp_path / "c").model.mean.weight)


def test_gradient_clipping_bounds_the_update(tmp_path):
    recipe = tiny_recipe({"epochs": 1, "max_steps": 1, "optimizer": {"type": "sgd", "lr": 1.0},
                          "grad_clip": 0.01})
    trainer = Trainer(recipe, tmp_path)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.fit()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)
    assert MetricsLog(tmp_path).read("steps")[0]["grad_norm"] > 0.01  # the norm logged before clipping


def test_schedule_steps_once_per_optimizer_step(tmp_path):
    recipe = tiny_recipe({"epochs": 2, "scheduler": {"type": "cosine", "warmup_steps": 3}})
    Trainer(recipe, tmp_path).fit()
    lrs = [r["lr"] for r in MetricsLog(tmp_path).read("steps")]
    expected = [0.05 * (s + 1) / 3 if s < 3 else 0.05 * 0.5 * (1 + math.cos(math.pi * (s - 3) / 9))
                for s in range(1, 13)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_nonfinite_steps_are_skipped_and_counted(tmp_path, scoped):
    recipe = tiny_recipe({"epochs": 1, "max_nonfinite": 3}, model={"type": "nan_model", "bad_calls": [1, 2]})
    trainer = Trainer(recipe, tmp_path)
    result = trainer.fit()
    steps = MetricsLog(tmp_path).read("steps")
    assert result["nonfinite_steps"] == 2 and [r["nonfinite"] for r in steps] == [0, 1, 2, 2, 2, 2]
    assert ["loss" in r for r in steps] == [True, False, False, True, True, True]  # skipped: no loss
    assert all(math.isfinite(r["loss"]) for r in steps if "loss" in r)
    assert math.isfinite(result["val_nll"])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_too_many_nonfinite_steps_stop_the_run_naming_step_and_checkpoint(tmp_path, scoped):
    bad_from_step_8 = {"type": "nan_model", "bad_calls": list(range(7, 30))}  # a good checkpoint at step 6
    recipe = tiny_recipe({"epochs": 3, "max_nonfinite": 2}, model=bad_from_step_8)
    with pytest.raises(NonFiniteLossError, match=r"at step 9: non-finite loss in 2 steps in a row "
                       r"\(train.max_nonfinite=2\); last good checkpoint: .*step-000006$"):
        Trainer(recipe, tmp_path).fit()


def test_a_used_run_dir_needs_resume(tmp_path):
    Trainer(tiny_recipe({"epochs": 1}), tmp_path).fit()
    with pytest.raises(CheckpointError, match="already holds checkpoints: pass resume=auto"):
        Trainer(tiny_recipe({"epochs": 1}), tmp_path)
    assert Trainer(tiny_recipe({"epochs": 1}), tmp_path, resume="auto").fit()["step"] == 6


def test_early_stopping_and_callback_stop(tmp_path):
    rule = {"metric": "val_nll", "mode": "max", "patience": 2}  # val_nll falls: never "improves"
    result = Trainer(tiny_recipe({"epochs": 10, "eval_every": 2, "early_stopping": rule}), tmp_path / "a").fit()
    assert result["step"] == 6 and result["stopped"].startswith("early stopping")
    assert result["best_step"] == 2
    recorder = Recorder(stop_at=12)
    result = Trainer(tiny_recipe({"epochs": 10}), tmp_path / "b", callbacks=[recorder]).fit()
    assert result["step"] == 12 and result["stopped"] == "test" and len(recorder.calls) == 2


def test_bf16_mixed_precision_trains(tmp_path):
    result = Trainer(tiny_recipe({"epochs": 1, "mixed_precision": "bf16"}), tmp_path / "bf16").fit()
    full = Trainer(tiny_recipe({"epochs": 1}), tmp_path / "fp32").fit()
    assert math.isfinite(result["val_nll"])
    # autocast is on (the result differs from float32's) and costs little (measured: 0.002 nats)
    assert 0 < abs(result["val_nll"] - full["val_nll"]) < 0.05


def test_bad_settings_and_missing_data_are_clear_errors(tmp_path, scoped):
    with pytest.raises(RecipeError, match=r"train.batch_size: 18 is not divisible .* 1 x 4"):
        Trainer(tiny_recipe({"batch_size": 18, "grad_accum": 4}), tmp_path)
    with pytest.raises(DataError, match=r"train split .* has 96 samples, fewer than train.batch_size=128"):
        Trainer(tiny_recipe({"batch_size": 128}), tmp_path)
    with pytest.raises(DataError, match="raw data for 'missing_data' not found"):
        Trainer(tiny_recipe(task={"type": "missing_data"}), tmp_path)
    with pytest.raises(RecipeError, match="train.early_stopping.metric: metric 'val_acc'"):
        Trainer(tiny_recipe({"early_stopping": {"metric": "val_acc"}}), tmp_path).fit()
