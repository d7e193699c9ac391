"""Every Python block of the docs runs on its own: no block uses a name that only an earlier
block defines, or a component that only an earlier block registers.

Two checks. Statically, for every block of docs/*.md and the READMEs: each name the block reads
is a builtin or is bound in the block itself (an import, an assignment, a def). At run time, for
the blocks of docs/*.md: each block runs in a fresh namespace, from an empty working directory,
with every registry restored after it (``Registry.scoped``), so what one block registers is gone
before the next runs; the blocks run in reverse page order, so a block that still relied on an
earlier one would fail here. Three long blocks are left to the static check (``LONG`` names the
tests that cover what they do).
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import re
import symtable
import sys
from pathlib import Path

import pytest

from eddies.core import KINDS, get_registry

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted({*(ROOT / "docs").glob("*.md"), ROOT / "README.md", *(ROOT / "packages").glob("*/README.md"),
                *(ROOT / "examples").rglob("README.md")})
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(pages):
    return [(page.relative_to(ROOT).as_posix(), index, code)
            for page in pages for index, code in enumerate(BLOCK.findall(page.read_text()))]


ALL = blocks(PAGES)
DOCS = [b for b in ALL if b[0].startswith("docs/")]
LONG = {  # run elsewhere or too long for the suite; still checked statically
    ("docs/training.md", 0): "a full epoch of MNIST (minutes); tests/engine/test_docs.py runs the page's short example",
    ("docs/distributed.md", 0): "two DDP processes training; tests/engine/test_distributed.py covers debug_launcher",
    ("docs/sweeps.md", 0): "a Ray Tune sweep; tests/engine/test_tune.py runs sweeps",
}
# a block that is a file of the example plug-in runs where the plug-in is installed
PLUGIN = {("docs/plugins.md", 1)}


def unbound_names(code: str) -> set[str]:
    """Names ``code`` reads that are neither builtins nor bound at its top level."""
    top = symtable.symtable(code, "<block>", "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    known = bound | set(dir(builtins))
    unbound = {s.get_name() for s in top.get_symbols() if s.is_referenced() and s.get_name() not in known}
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        for symbol in table.get_symbols():
            if symbol.is_global() and symbol.is_referenced() and symbol.get_name() not in known:
                unbound.add(symbol.get_name())
    return unbound


def test_the_pages_have_blocks_and_the_static_check_can_fail():
    assert len(DOCS) > 30
    assert unbound_names("x = torch.zeros(2)\n") == {"torch"}
    assert unbound_names("def f():\n    return build()\n") == {"build"}
    assert unbound_names("import torch\nclass A:\n    y = torch.ones(1)\n") == set()


@pytest.mark.parametrize(("page", "index", "code"), ALL, ids=[f"{p}[{i}]" for p, i, _ in ALL])
def test_a_block_reads_only_names_it_binds(page, index, code):
    assert not unbound_names(code), f"{page} python block {index} uses names bound elsewhere: {unbound_names(code)}"


@contextlib.contextmanager
def scoped_registries():
    with contextlib.ExitStack() as stack:
        for kind in KINDS:
            stack.enter_context(get_registry(kind).scoped())
        yield


RUNS = [pytest.param(page, index, code, id=f"{page}[{index}]",
                     marks=[pytest.mark.skip(reason=LONG[page, index])] if (page, index) in LONG else [])
        for page, index, code in reversed(DOCS)]


@pytest.mark.parametrize(("page", "index", "code"), RUNS)
def test_a_block_runs_alone(page, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that wrote files for a later one would not find them
    monkeypatch.setenv("EDDIES_RECIPES", str(ROOT / "recipes"))
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "data"))
    with scoped_registries():
        if (page, index) in PLUGIN:
            monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin" / "src"))
            for name in [m for m in sys.modules if m.split(".")[0] == "eddies_example_plugin"]:
                monkeypatch.delitem(sys.modules, name)  # imported afresh: it registers inside this scope
            importlib.import_module("eddies_example_plugin")
        exec(compile(code, f"{page}[python block {index}]", "exec"), {"__name__": f"docs_block_{index}"})  # noqa: S102
