"""The Python examples in docs/flows.md and docs/conformance.md run as written."""

import re
from pathlib import Path

import pytest

from eddies.core import FLOWS
from eddies.core.testing import bijection_cases, check_bijection_conformance

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(name):
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.S)


@pytest.mark.slow
def test_flows_page_examples_run():
    for block in python_blocks("flows.md"):  # each on its own (tests/apps/test_docs_blocks.py)
        namespace = {}
        exec(compile(block, "docs/flows.md", "exec"), namespace)  # noqa: S102 (our own docs)
    assert namespace["z"].shape == (2, 1024)  # the last block: c-Glow on 1x32x32 targets


def test_conformance_page_examples_run():
    blocks = python_blocks("conformance.md")
    with FLOWS.scoped():
        exec(compile(blocks[0], "docs/conformance.md", "exec"), {})  # noqa: S102
        assert [c.id for c in bijection_cases(["doc_scale"])] == ["flows/doc_scale@1[0]", "flows/doc_scale@1[1]"]
        check_bijection_conformance("doc_scale")  # the page's layer passes the kit it documents
    assert "doc_scale" not in FLOWS
    exec(compile(blocks[2], "docs/conformance.md", "exec"), {})  # noqa: S102 (on its own)
