"""The runnable examples in the flows modules' docstrings."""

import doctest
import importlib
import pkgutil

import pytest

import eddies.flows

MODULES = [
    "eddies.flows",
    *(f"eddies.flows.{m.name}" for m in pkgutil.iter_modules(eddies.flows.__path__) if not m.name.startswith("_")),
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
