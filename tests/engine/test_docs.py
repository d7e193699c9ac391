"""The runnable examples in the engine's docstrings and in docs/training.md."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = ["serialization", "rng", "data", "metrics"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"eddies.engine.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_training_page_example_runs(tmp_path, monkeypatch):
    page = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    example = re.search(r"## A synthetic task.*?```python\n(.*?)```", page, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(example.replace('"epochs": 2', '"epochs": 1, "threads": 1'), "training.md", "exec"), {})
    assert (tmp_path / "runs" / "synthetic-demo" / "checkpoints" / "latest").is_file()


def test_every_train_setting_is_in_the_training_page_table():
    from eddies.core.recipe import TrainConfig

    page = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    table = page[page.index("## Settings (`train:` in a recipe)"):]
    table = table[:table.index("\n## ")]
    documented = {name for row in re.findall(r"^\| (.+?) \|", table, re.M) for name in re.findall(r"`(\w+)`", row)}
    assert set(TrainConfig.model_fields) <= documented, sorted(set(TrainConfig.model_fields) - documented)
