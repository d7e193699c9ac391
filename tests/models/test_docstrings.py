"""The runnable examples in the model kinds' docstrings."""

import doctest
import importlib
import pkgutil

import pytest

import eddies.models

MODULES = [f"eddies.models.{m.name}" for m in pkgutil.iter_modules(eddies.models.__path__)]


def test_every_kind_module_is_listed():
    assert {"eddies.models.conditional_flow", "eddies.models.sequence_flow",
            "eddies.models.gaussian_regression"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
