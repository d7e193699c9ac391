"""The docs site: ``mkdocs build --strict`` passes (a broken link, a missing page, a docstring
mkdocstrings cannot render fail it), every page of docs/ is in the nav, and the API reference
has one page per package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "flows", "conditioners", "priors", "models", "tasks", "engine")


def nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    return [page for item in node for page in nav_pages(item)]


def config() -> dict:
    # mkdocs.yml has no Python tags, so the safe loader reads it
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_every_page_is_in_the_nav_and_every_package_has_an_api_page():
    pages = nav_pages(config()["nav"])
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(pages) == on_disk, f"nav vs docs/: {sorted(set(pages) ^ set(on_disk))}"
    for package in PACKAGES:
        text = (ROOT / "docs" / "api" / f"{package}.md").read_text()
        assert re.search(rf"^::: eddies\.{package}$", text, re.M), package


@pytest.mark.slow
def test_the_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    api = (tmp_path / "site" / "api" / "core" / "index.html").read_text()
    assert "eddies.core.recipe" in api and "load_recipe" in api  # generated from the docstrings
    assert (tmp_path / "site" / "training" / "index.html").is_file()
