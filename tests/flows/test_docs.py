"""The Python examples in docs/flows.md and docs/conformance.md run as written."""

import re
from pathlib import Path

import pytest

from eddies.core import FLOWS
from eddies.core.testing import bijection_cases

DOCS = Path(__file__).resolve().parents[2] / "docs"


def python_blocks(name):
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.S)


@pytest.mark.slow
def test_flows_page_examples_run():
    namespace = {}
    for block in python_blocks("flows.md"):
        exec(compile(block, "docs/flows.md", "exec"), namespace)  # noqa: S102 (our own docs)
    assert namespace["z"].shape == (2, 1024)  # the last block: c-Glow on 1x32x32 targets


def test_conformance_page_examples_run():
    blocks = python_blocks("conformance.md")
    with FLOWS.scoped():
        namespace = {}
        exec(compile(blocks[0], "docs/conformance.md", "exec"), namespace)  # noqa: S102
        exec(compile(blocks[2], "docs/conformance.md", "exec"), namespace)  # noqa: S102
        assert [c.id for c in bijection_cases(["doc_scale"])] == ["flows/doc_scale@1[0]", "flows/doc_scale@1[1]"]
    assert "doc_scale" not in FLOWS
