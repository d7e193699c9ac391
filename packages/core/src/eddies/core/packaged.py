"""The recipes that ship inside the installed ``eddies`` distribution (the meta package).

The meta package's wheel force-includes the repository's ``recipes/`` folder (sweeps included)
as ``eddies/recipes/`` (root ``pyproject.toml``), so that after ``pip install eddies`` a recipe
name resolves outside the repository: ``eddies train recipe=frmdn_mnist``.
:func:`eddies.core.recipe.recipes_dir` falls back to :func:`packaged_recipes` when neither
``$EDDIES_RECIPES`` nor a ``recipes/`` folder at or above the working directory exists.

An editable install (``pip install -e .``, the Makefile's) also copies the folder, as it was at
install time; :func:`packaged_recipes` then returns the repository's live ``recipes/`` instead
(the source tree named by the installation's ``direct_url.json``, PEP 610), never a stale copy.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

DISTRIBUTION = "eddies"
FOLDER = "eddies/recipes"


def packaged_recipes() -> Path | None:
    """The recipes folder of the installed ``eddies`` distribution: ``eddies/recipes`` in its
    wheel, or ``<source tree>/recipes`` for an editable install; ``None`` when the distribution
    is not installed or has no such folder."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    source = _editable_source(dist)
    folder = source / "recipes" if source is not None else Path(str(dist.locate_file(FOLDER)))
    return folder if folder.is_dir() else None


def _editable_source(dist: metadata.Distribution) -> Path | None:
    """The source tree of an editable install (PEP 610 ``direct_url.json``), else ``None``."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return None
    url = info.get("url", "") if isinstance(info, dict) else ""
    editable = isinstance(info, dict) and isinstance(info.get("dir_info"), dict) and info["dir_info"].get("editable")
    if not editable or not url.startswith("file:"):
        return None
    return Path(url2pathname(urlparse(url).path))


__all__ = ["packaged_recipes"]
