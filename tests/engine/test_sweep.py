"""Sweep files share the recipes' override walker and error texts (eddies.engine.sweep)."""

from __future__ import annotations

import pytest
import yaml

from eddies.core import RecipeError
from eddies.engine.sweep import apply_config, load_sweep
from tests.engine.conftest import tiny_recipe

SWEEP = {"metric": "val_nll", "space": {"train.optimizer.lr": {"type": "choice", "values": [0.1]}}}


def test_sweep_overrides_use_the_shared_walker_and_say_they_came_from_the_command_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    sweep = load_sweep(path, ["space.train.batch_size={type: grid, values: [8, 16]}", "resources.cpu=2"])
    assert sweep.space["train.batch_size"].values == [8, 16] and sweep.resources.cpu == 2
    with pytest.raises(RecipeError) as err:
        load_sweep(path, ["metric.name=x"])
    assert str(err.value) == ("metric.name: cannot set 'metric.name': 'metric' holds a str, not a mapping or list "
                              "(from the command-line override metric.name=x)")
    with pytest.raises(RecipeError, match=r"unknown sweep 'nope'"):
        load_sweep("nope")


def test_sweep_unknown_keys_use_the_shared_hint(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "num_sample": 3}))
    with pytest.raises(RecipeError, match=r"^num_sample: unknown key 'num_sample'. Did you mean 'num_samples', "
                       r"'name'\? Allowed keys: description"):
        load_sweep(path)


def test_a_trial_value_that_does_not_fit_names_the_sweep_as_its_origin():
    tree = tiny_recipe().to_dict()
    with pytest.raises(RecipeError, match=r"train.batch_size: Input should be greater than or equal to 1 "
                       r"\(from the sweep value train.batch_size=0\)"):
        apply_config(tree, {"train.batch_size": 0})


def test_a_sweep_override_mistake_names_the_override_as_typed(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "scheduler": {"type": "asha", "max_t": 4}}))
    cases = [
        (["num_samples=abc"], "num_samples: Input should be a valid integer, unable to parse string as an integer "
                              "(from the command-line override sweep.num_samples=abc)"),
        (["space.train.optimizer.lr={type: loguniform, low: 0, high: 1}"],
         "space[train.optimizer.lr].low: Input should be greater than 0 (from the command-line override "
         "sweep.space.train.optimizer.lr={type: loguniform, low: 0, high: 1})"),
        # a whole-section check that an override took part in names the override and the file
        (["scheduler.grace_period=9"], "scheduler: grace_period (9) must not exceed max_t (4) (from the "
                                       f"command-line override sweep.scheduler.grace_period=9 and {path})"),
    ]
    for words, message in cases:
        with pytest.raises(RecipeError) as err:
            load_sweep(path, words, prefix="sweep.")
        assert str(err.value) == message
    path.write_text(yaml.safe_dump({**SWEEP, "num_samples": "abc"}))
    with pytest.raises(RecipeError) as err:  # a mistake in the file itself still names the file
        load_sweep(path, ["max_concurrent=2"], prefix="sweep.")
    assert err.value.path == "num_samples" and str(err.value).endswith(f"(in {path})")


def test_fixed_overrides_keep_the_recipe_key_whole_and_a_bad_value_names_the_override(tmp_path):
    from eddies.engine.sweep import check_space, with_fixed

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SWEEP, "fixed": {"train.epochs": 5}}))
    tree = tiny_recipe().to_dict()
    sweep = load_sweep(path, ["fixed.train.epochs=2"], prefix="sweep.")
    assert sweep.fixed == {"train.epochs": 2}
    assert with_fixed(tree, sweep)["train"]["epochs"] == 2
    with pytest.raises(RecipeError) as err:
        with_fixed(tree, load_sweep(path, ["fixed.train.epochs=abc"], prefix="sweep."))
    assert str(err.value).endswith("(from the command-line override sweep.fixed.train.epochs=abc)")
    with pytest.raises(RecipeError) as err:
        check_space(tree, load_sweep(path, ["space.train.batch_size={type: choice, values: [0]}"], prefix="sweep."))
    assert err.value.path == "space[train.batch_size]"
    assert str(err.value).endswith("(from the command-line override sweep.space.train.batch_size={type: choice, "
                                   "values: [0]})")
    with pytest.raises(RecipeError) as err:  # the same value from the file names the sweep
        path.write_text(yaml.safe_dump({**SWEEP, "space": {"train.batch_size": {"type": "choice", "values": [0]}}}))
        check_space(tree, load_sweep(path))
    assert str(err.value).endswith(f"(in {path.stem})")


def test_the_objective_is_the_sweeps_else_the_recipes_monitor_else_an_error(tmp_path, monkeypatch):
    from eddies.engine.sweep import objective
    from eddies.tasks.synthetic import SyntheticRegression

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"space": SWEEP["space"]}))
    bare = load_sweep(path)
    assert bare.metric is None and bare.mode is None
    tree = tiny_recipe().to_dict()
    with pytest.raises(RecipeError) as err:  # no guess: the trainer's default needs the model to run
        objective(tree, bare)
    assert err.value.path == "metric" and "train.monitor.metric" in str(err.value)
    tree["train"]["monitor"] = {"metric": "val_test_mse", "mode": None}
    assert (objective(tree, bare).metric, objective(tree, bare).mode) == ("val_test_mse", "min")
    monkeypatch.setattr(SyntheticRegression, "metric_directions", lambda self: {"test_mse": "max"})
    assert objective(tree, bare).mode == "max"  # the task's declared direction
    path.write_text(yaml.safe_dump({**SWEEP, "mode": "min"}))
    explicit = objective(tree, load_sweep(path))
    assert (explicit.metric, explicit.mode) == ("val_nll", "min")  # the sweep's own choice wins
    tree["train"]["task_eval_every"] = 2
    with pytest.raises(RecipeError, match=r"val_test_mse is a task metric, computed every 2 evaluations"):
        objective(tree, bare)
