"""Checkpoint faults: edited metadata, non-finite weights, impostor components, leftovers, resume settings."""

import json
import math
import shutil
import warnings

import pytest
import torch

from eddies.core import CheckpointError, NonFiniteLossError, get_registry, register
from eddies.engine import MetricsLog, Trainer, load_checkpoint, read_checkpoint
from eddies.engine.checkpoint import clean_leftovers, read_state, state_digest
from eddies.models import GaussianRegression
from eddies.tasks.synthetic import SyntheticRegression, SyntheticRegressionConfig
from tests.engine.conftest import tiny_recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of the tiny recipe: checkpoint step-000006."""
    folder = tmp_path_factory.mktemp("run")
    Trainer(tiny_recipe({"epochs": 1}), folder).fit()
    return folder


def copy_checkpoint(run, tmp_path):
    return shutil.copytree(run / "checkpoints" / "step-000006", tmp_path / "step-000006")


# state.json is covered by its own checksum ---------------------------------------------------
@pytest.mark.parametrize("edit", ["task setting", "step", "file hash", "checksum removed"])
def test_an_edited_state_json_is_refused(run, tmp_path, edit):
    ckpt = copy_checkpoint(run, tmp_path)
    state = json.loads((ckpt / "state.json").read_text())
    if edit == "task setting":
        state["recipe"]["task"]["n_validation"] = 30
    elif edit == "step":
        state["step"] = 5
    elif edit == "file hash":
        state["files"]["model.safetensors"] = "0" * 64
    else:
        del state["sha256"]
    (ckpt / "state.json").write_text(json.dumps(state, indent=1))
    with pytest.raises(CheckpointError, match=r"state.json is corrupted: its content does not match the SHA-256"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="state.json is corrupted"):
        Trainer(tiny_recipe({"epochs": 2}), tmp_path / "resumed", resume=ckpt)


def test_the_checksum_survives_rewriting_the_json_and_format_1_still_loads_with_a_warning(run, tmp_path):
    ckpt = copy_checkpoint(run, tmp_path)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["format"] == 2 and state["sha256"] == state_digest(state)
    (ckpt / "state.json").write_text(json.dumps(state))  # another layout, same content: still valid
    assert read_state(ckpt)[1]["step"] == 6
    old = {k: v for k, v in state.items() if k != "sha256"} | {"format": 1}
    (ckpt / "state.json").write_text(json.dumps(old))
    with pytest.warns(RuntimeWarning, match="format 1: its state.json carries no checksum"):
        assert load_checkpoint(ckpt)[3]["step"] == 6


# non-finite weights are never "good" or "best" -----------------------------------------------
class BlowsUp(GaussianRegression):
    """gaussian_regression whose weights become inf at its 9th training call (step 9)."""

    calls = 0

    def loss(self, batch):
        if self.training and torch.is_grad_enabled():
            BlowsUp.calls += 1
            if BlowsUp.calls == 9:
                with torch.no_grad():
                    next(self.parameters()).fill_(math.inf)
        return super().loss(batch)


def test_a_checkpoint_with_inf_weights_is_neither_best_nor_last_good(tmp_path):
    BlowsUp.calls = 0
    with get_registry("models").scoped():
        register("models", "blows_up", summary="inf weights at step 9 (tests)")(BlowsUp)
        recipe = tiny_recipe({"epochs": 3, "max_nonfinite": 6}, model={"type": "blows_up"})
        with pytest.raises(NonFiniteLossError, match=r"at step 14: .*last good checkpoint: .*step-000006$"):
            Trainer(recipe, tmp_path).fit()
    folder = tmp_path / "checkpoints"
    assert (folder / "latest").read_text().strip() == "step-000012"  # written, but not good:
    state = json.loads((folder / "step-000012" / "state.json").read_text())
    assert state["good"] is False and state["trainer"]["last_good"] == "step-000006"
    assert not math.isfinite(state["trainer"]["last_metrics"]["val_nll"])
    assert read_checkpoint(folder / "step-000012").state == state  # non-finite metrics pass the checksum
    assert (folder / "best").read_text().strip() == "step-000006"
    assert state["trainer"]["best"]["step"] == 6
    assert json.loads((folder / "step-000006" / "state.json").read_text())["good"] is True


class OneDivergedMetric(SyntheticRegression):
    """synthetic_regression with one more task metric that is always NaN (as a 1 s forecast of one
    action can diverge while every other metric is fine)."""

    def metric_directions(self):
        return {**super().metric_directions(), "diverged": "min"}

    def evaluate(self, model, loader, **options):
        return {**super().evaluate(model, loader, **options), "diverged": math.nan}


def test_a_nan_side_metric_leaves_the_checkpoint_good_and_best(tmp_path):
    """Only the losses and the monitored metric decide whether a checkpoint is good."""
    with get_registry("tasks").scoped():
        register("tasks", "one_diverged_metric", config=SyntheticRegressionConfig,
                 summary="a NaN task metric (tests)")(OneDivergedMetric)
        recipe = tiny_recipe({"epochs": 2, "task_eval_every": 1, "monitor": {"metric": "val_test_mse"}},
                             task={"type": "one_diverged_metric", "n_train": 96, "n_validation": 40, "n_test": 32})
        Trainer(recipe, tmp_path).fit()
    folder = tmp_path / "checkpoints"
    state = json.loads((folder / "step-000012" / "state.json").read_text())
    assert math.isnan(state["trainer"]["last_metrics"]["val_diverged"])
    assert state["good"] is True and state["trainer"]["last_good"] == "step-000012"
    assert (folder / "best").read_text().strip() in ("step-000006", "step-000012")


# a component now provided by another distribution ---------------------------------------------
class Impostor(GaussianRegression):
    """Same name and version as the first-party gaussian_regression, from another 'distribution'."""


def test_a_component_from_another_distribution_needs_allow_other_distribution(run, tmp_path):
    models = get_registry("models")
    with models.scoped(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the registry warns about the override itself
        register("models", "gaussian_regression", override=True, summary="impostor (tests)")(Impostor)
        with pytest.raises(CheckpointError, match=r"models/gaussian_regression@1 was saved from eddies-models "
                           r"\S+, but is now provided by code outside any installed distribution\. The model may not be the one "
                           r"that was trained; pass allow_other_distribution=True") as refused:
            load_checkpoint(run)
        assert "\n" not in str(refused.value)  # one line, as the command line's one error line
        with pytest.raises(CheckpointError, match="another distribution now provides"):
            Trainer(tiny_recipe({"epochs": 2}), tmp_path / "r", resume=run / "checkpoints" / "step-000006")
        with pytest.warns(RuntimeWarning, match="but is now provided by"):
            _, model, _, _ = load_checkpoint(run, allow_other_distribution=True)
        assert type(model) is Impostor
        with pytest.warns(RuntimeWarning, match="but is now provided by"):
            trainer = Trainer(tiny_recipe({"epochs": 2}), tmp_path / "r", resume=run / "checkpoints" / "step-000006",
                              allow_other_distribution=True)
        assert trainer.step == 6
        trainer.close()


# leftovers of killed writes ----------------------------------------------------------------------
def test_leftovers_are_removed_at_the_next_start_and_a_complete_one_is_put_back(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    folder = tmp_path / "run" / "checkpoints"
    (folder / ".tmp-step-000009-123-abcdef01").mkdir()  # a write killed midway
    (folder / ".tmp-step-000009-123-abcdef01" / "model.safetensors").write_bytes(b"half")
    (folder / ".tmp-latest-123-0badcafe").write_text("step-0000")  # a pointer being replaced
    (tmp_path / "run" / "metrics" / ".tmp-steps.jsonl-1-00000000").write_text("{")
    # a kill between the two renames replacing step-000006: only the hidden copies remain
    (folder / "step-000006").rename(folder / ".tmp-step-000006-123-feedf00d")
    trainer = Trainer(tiny_recipe({"epochs": 2}), tmp_path / "run", resume="auto")
    assert trainer.step == 6
    trainer.close()
    assert sorted(p.name for p in folder.iterdir()) == ["best", "latest", "step-000006"]
    assert not list((tmp_path / "run" / "metrics").glob(".tmp-*"))
    assert read_checkpoint(folder / "step-000006").state["step"] == 6
    assert clean_leftovers(folder) == []


# resuming with changed train settings -----------------------------------------------------------
def _lrs(run_dir):
    return {r["step"]: r["lr"] for r in MetricsLog(run_dir).read("steps")}


def test_a_changed_lr_is_applied_on_resume(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    trainer = Trainer(tiny_recipe({"epochs": 2, "optimizer": {"type": "adam", "lr": 0.01}}), tmp_path / "run",
                      resume="auto")
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [0.01]
    assert trainer.optimizer.state_dict()["state"]  # Adam's moments were restored, not reset
    trainer.fit()
    lrs = _lrs(tmp_path / "run")
    assert [lrs[s] for s in range(1, 7)] == [0.05] * 6 and [lrs[s] for s in range(7, 13)] == [0.01] * 6
    saved = read_checkpoint(tmp_path / "run").state
    assert saved["recipe"]["train"]["optimizer"]["lr"] == 0.01


def test_changed_lr_and_length_rebuild_the_schedule_at_the_resumed_step(tmp_path):
    cosine = {"type": "cosine", "warmup_steps": 2}
    Trainer(tiny_recipe({"epochs": 1, "scheduler": cosine}), tmp_path).fit()
    more = tiny_recipe({"epochs": 3, "scheduler": {**cosine, "min_factor": 0.1},
                        "optimizer": {"type": "adam", "lr": 0.02}})
    Trainer(more, tmp_path, resume="auto").fit()
    factor = lambda s: (s + 1) / 2 if s < 2 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 16))  # noqa: E731
    lrs = _lrs(tmp_path)
    assert [lrs[s] for s in range(7, 19)] == pytest.approx([0.02 * factor(s) for s in range(7, 19)], rel=1e-12)


def test_another_task_on_resume_is_one_line_naming_the_keys(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    other = tiny_recipe({"epochs": 2}, task={"type": "synthetic_regression", "n_train": 80, "n_validation": 40,
                                              "n_test": 32})
    with pytest.raises(CheckpointError) as err:
        Trainer(other, tmp_path / "run", resume="auto")
    assert str(err.value) == (f"cannot resume from {tmp_path / 'run' / 'checkpoints' / 'step-000006'}: the recipe's "
                              "task differs from the checkpoint's (checkpoint -> recipe): task.n_train: 96 -> 80")


def test_settings_that_cannot_change_on_resume_are_refused_by_name(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    recipe = tiny_recipe({"epochs": 2, "batch_size": 8, "optimizer": {"type": "sgd", "lr": 0.05},
                          "scheduler": {"type": "cosine"}}, seed=4)
    with pytest.raises(CheckpointError) as err:
        Trainer(recipe, tmp_path / "run", resume="auto")
    message = str(err.value)
    assert "these settings cannot change within a run" in message
    for key in ("seed: 3 -> 4", "train.batch_size: 16 -> 8", 'train.optimizer.type: "adam@1" -> "sgd@1"',
                "train.scheduler: null -> "):
        assert key in message, message
    # and the lock of the refused run was released
    Trainer(tiny_recipe({"epochs": 2}), tmp_path / "run", resume="auto").close()
