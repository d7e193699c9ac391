"""Every module docstring (packages, benchmarks, apps, examples) that cites a local paper file
(``cglow.txt``) also cites the paper by authors, year and arXiv id, so a reader without the
shared folder can find it (issue 10)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# local file -> (first author's name, year, arXiv id)
PAPERS = {
    "cglow.txt": ("Lu", "2020", "1905.13288"),
    "motionflow.txt": ("Zand", "2023", "2104.04391"),
    "frmdn.txt": ("Razavi", "2020", "2008.02144"),
    "srvp.txt": ("Franceschi", "2020", "2002.09219"),
    "motionrnn_supplement.txt": ("Wu", "2021", "2103.02243"),
}
MODULES = sorted([*(ROOT / "packages").glob("*/src/eddies/**/*.py"), *(ROOT / "benchmarks").glob("*.py"),
                  *(ROOT / "apps").glob("*.py"), *(ROOT / "examples").rglob("*.py")])


def test_the_modules_are_found():
    assert len(MODULES) > 50


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_local_paper_file_comes_with_authors_year_and_arxiv_id(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    flat = " ".join(doc.split())
    missing = [
        f"{name} ({author}, {year}, arXiv:{arxiv})"
        for name, (author, year, arxiv) in PAPERS.items()
        if re.search(rf"\b{re.escape(name)}", flat)
        and not (author in flat and year in flat and f"arXiv:{arxiv}" in flat)
    ]
    assert not missing, f"{path.name}: the module docstring cites {missing} by local file only"
