"""The runnable examples in the conditioners' docstrings run and print what they claim."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import eddies.conditioners

MODULES = sorted(m.name for m in pkgutil.iter_modules(eddies.conditioners.__path__, "eddies.conditioners."))
MODULES += ["eddies.core.conditioner"]  # the SequenceConditioner contract's example


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


DOC = Path(__file__).resolve().parents[2] / "docs" / "conditioners.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S) if DOC.exists() else []


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_docs_page_examples_run(index, capsys):
    exec(compile(BLOCKS[index], f"{DOC.name}[python block {index}]", "exec"), {})
