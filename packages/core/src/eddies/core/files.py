"""Atomic publication of files and folders: readers see the old complete version or the new one.

A folder is written under a hidden temporary name beside its final one, every file in it is
fsynced, and it is renamed to the final name in one ``os.rename`` (atomic within a file system);
the parent folder is then fsynced so the rename itself survives a crash. A process killed at any
moment leaves no half-written folder under a visible name, only a hidden ``.tmp-*`` one.

Two processes may build the same folder at once (two ranks, two sweep trials preparing one
data cache): with ``replace=False`` the first rename wins and the later writer discards its own
copy; with ``replace=True`` (checkpoints rewritten at the same step) the new folder replaces the
old one. Used by the task caches (:mod:`eddies.tasks.cache`) and the engine's checkpoints.

Example::

    >>> import tempfile
    >>> from pathlib import Path
    >>> final = Path(tempfile.mkdtemp()) / "cache"
    >>> with atomic_dir(final) as tmp:
    ...     _ = (tmp / "data.txt").write_text("complete")
    >>> (final / "data.txt").read_text(), sorted(p.name for p in final.parent.iterdir())
    ('complete', ['cache'])
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path | str) -> None:
    """fsync one file or folder (a folder's fsync makes its entries, e.g. a rename, durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path | str) -> None:
    """fsync every file and folder below ``folder``, then ``folder`` itself."""
    for here, _, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(os.path.join(here, name))
        fsync_path(here)


def temporary_sibling(final: Path) -> Path:
    """A hidden, unique path beside ``final`` (``.tmp-<name>-<pid>-<random>``)."""
    return final.parent / f".tmp-{final.name}-{os.getpid()}-{secrets.token_hex(4)}"


@contextmanager
def atomic_dir(final: Path | str, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder; on a clean exit publish it as ``final`` atomically.

    The temporary folder is fsynced and renamed to ``final``. When ``final`` already exists:
    with ``replace=False`` it is kept (another writer finished first: the copy is discarded);
    with ``replace=True`` the new folder takes its place (the old one is moved aside, then
    deleted). If the body raises, the temporary folder is deleted and nothing is published.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        _publish(tmp, final, replace)
        fsync_path(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left once published


def _publish(tmp: Path, final: Path, replace: bool) -> None:
    if replace and final.exists():
        trash = temporary_sibling(final)
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        # a concurrent writer published first: keep its folder, ours is deleted by the caller


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Replace the file ``path`` by ``data`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


__all__ = ["atomic_dir", "atomic_write_bytes", "fsync_path", "fsync_tree", "temporary_sibling"]
