"""The Arrow cache every file-backed task shares: raw source, key, atomic build, split names.

A task converts its raw source once into a ``datasets`` Arrow copy and reads that copy ever
after. :class:`ArrowCache` holds the rules, so each task writes only its conversion:

- **Raw source** (:func:`source_path`): the task's ``source`` setting (a path, ``~`` expanded)
  or, when unset, the task's default location; a missing file is a
  :class:`~eddies.core.errors.DataError` saying how to obtain it.
- **Key**: the folder is ``data_dir/<task>/<key>``, ``key`` the first 16 hex digits of the
  SHA-256 of ``{"format": F, "source_sha256": <the source file's SHA-256>, **settings}`` as
  sorted JSON. Another source file, another setting that changes the data (``limit``), or a
  bumped layout ``format`` gives another folder; nothing stale is ever read.
- **Atomic build** (:meth:`ArrowCache.build`): the splits are saved into a hidden temporary
  folder renamed into place when complete (:func:`eddies.core.files.atomic_dir`). A build
  killed half way leaves only the hidden folder, which is never read; two processes building
  at once both succeed and the first rename wins.
- **Splits** (:data:`SPLITS`, :func:`check_split`): ``train``, ``validation``, ``test``; asking
  for another is a ``DataError`` listing the task's splits.

Example::

    >>> import tempfile, datasets
    >>> from pathlib import Path
    >>> source = Path(tempfile.mkdtemp()) / "raw.txt"; _ = source.write_text("1 2 3")
    >>> cache = ArrowCache.for_source(source.parent / "data", "demo", source, {"limit": None})
    >>> cache.ready()
    False
    >>> _ = cache.build(lambda: {s: datasets.Dataset.from_dict({"v": [1, 2]}) for s in SPLITS})
    >>> cache.ready(), len(cache.split("validation"))
    (True, 2)
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eddies.core.errors import DataError
from eddies.core.files import atomic_dir

if TYPE_CHECKING:
    import datasets

SPLITS: tuple[str, ...] = ("train", "validation", "test")
COMPLETE = "dataset_dict.json"  # written last by datasets.DatasetDict.save_to_disk
KEY_DIGITS = 16


def check_split(task: str, split: str, splits: tuple[str, ...] = SPLITS) -> str:
    """``split`` when it is one of ``splits``; else a :class:`DataError` naming the task's splits."""
    if split not in splits:
        raise DataError(f"{task}: unknown split {split!r}; splits are {', '.join(splits)}")
    return split


def source_path(task: str, setting: str | Path | None, default: Path | None, hint: str) -> Path:
    """The raw source file: the ``source`` setting, else ``default``; missing -> DataError with ``hint``."""
    path = Path(setting).expanduser() if setting is not None else default
    if path is None:
        raise DataError(f"{task}: no raw source found (the task's source setting is unset); {hint}")
    if not path.is_file():
        raise DataError(f"{task}: raw source {path} does not exist; {hint}")
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(source_sha256: str, settings: Mapping[str, Any], format: int = 1) -> str:
    """The folder name: 16 hex digits of SHA-256 of the sorted JSON of format, source hash, settings."""
    if {"format", "source_sha256"} & set(settings):
        raise ValueError("settings must not use the reserved names 'format' and 'source_sha256'")
    text = json.dumps({"format": format, "source_sha256": source_sha256, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_DIGITS]


@dataclass(frozen=True)
class ArrowCache:
    """One task's Arrow cache folder ``path`` (``data_dir/<task>/<key>``) and its split names."""

    task: str
    path: Path
    splits: tuple[str, ...] = SPLITS

    @classmethod
    def for_source(
        cls, data_dir: Path | str, task: str, source: Path, settings: Mapping[str, Any], format: int = 1,
        splits: tuple[str, ...] = SPLITS,
    ) -> ArrowCache:
        """The cache of ``source`` converted with ``settings`` (JSON-ready values that change the data)."""
        key = cache_key(file_sha256(source), settings, format)
        return cls(task, Path(data_dir) / task / key, splits)

    def ready(self) -> bool:
        """True when the folder is complete (only a finished build is ever renamed to ``path``)."""
        return (self.path / COMPLETE).is_file()

    def build(self, make: Callable[[], Mapping[str, datasets.Dataset]]) -> Path:
        """Build the cache once: ``make()`` returns one ``datasets.Dataset`` per split name.

        Nothing happens when the cache is ready. Otherwise the splits are saved into a temporary
        folder that is renamed to :attr:`path` when complete; a concurrent build that finished
        first is kept.
        """
        import datasets

        if self.ready():
            return self.path
        print(f"{self.task}: building the data cache {self.path}", file=sys.stderr)
        parts = dict(make())
        if sorted(parts) != sorted(self.splits):
            raise DataError(f"{self.task}: the conversion made splits {sorted(parts)}, expected {list(self.splits)}")
        with atomic_dir(self.path) as tmp:
            datasets.DatasetDict(parts).save_to_disk(str(tmp))
        if not self.ready():
            raise DataError(f"{self.task}: the cache {self.path} is incomplete after building it")
        return self.path

    def split(self, name: str) -> datasets.Dataset:
        """The Arrow dataset of split ``name`` (the cache must be built)."""
        import datasets

        check_split(self.task, name, self.splits)
        if not self.ready():
            raise DataError(f"{self.task}: the data cache {self.path} is not built; call task.prepare() first")
        return datasets.load_from_disk(str(self.path / name))


__all__ = ["COMPLETE", "SPLITS", "ArrowCache", "cache_key", "check_split", "file_sha256", "source_path"]
