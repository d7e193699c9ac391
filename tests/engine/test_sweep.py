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
