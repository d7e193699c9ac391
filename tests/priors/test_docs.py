"""The runnable examples in the priors' docstrings and in docs/priors.md run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import eddies.priors

MODULES = sorted(m.name for m in pkgutil.iter_modules(eddies.priors.__path__, "eddies.priors."))
DOC = Path(__file__).resolve().parents[2] / "docs" / "priors.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_docs_page_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
