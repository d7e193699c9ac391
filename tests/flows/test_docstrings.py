"""The runnable examples in the flows modules' docstrings (and the kit's and conditional_flow's)."""

import doctest
import importlib
import pkgutil

import pytest

import eddies.flows

MODULES = [
    "eddies.flows",
    *(f"eddies.flows.{m.name}" for m in pkgutil.iter_modules(eddies.flows.__path__)),
    "eddies.core.testing",
    "eddies.core.models.conditional_flow",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
