"""Atomic publication of files and folders: readers see the old complete version or the new one.

A folder is written under a hidden temporary name beside its final one, every file in it is
fsynced, and it is renamed to the final name in one ``os.rename`` (atomic within a file system);
the parent folder is then fsynced so the rename itself survives a crash. A process killed at any
moment leaves no half-written folder under a visible name, only a hidden ``.tmp-*`` one.

Two processes may build the same folder at once (two ranks, two sweep trials preparing one
data cache): with ``replace=False`` the first rename wins and the later writer discards its own
copy; with ``replace=True`` (checkpoints rewritten at the same step) the new folder replaces the
old one. Used by the task caches (:mod:`eddies.tasks.cache`) and the engine's checkpoints.
:func:`make_dir` creates a folder or says which path stands in the way, :func:`remove_dir`
deletes a folder the same way round (renamed to a hidden name first, so a
kill mid-deletion leaves no half-deleted folder under its name), and :func:`try_lock` takes the
exclusive lock that keeps two runs out of one run directory.

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

import errno
import fcntl
import os
import secrets
import shutil
import socket
import warnings
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
    if replace and final.exists():  # a kill between the renames leaves both as hidden .tmp-* folders
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


def obstacle(path: Path | str) -> Path | None:
    """What keeps ``path`` from being a folder, or from holding a new file: ``path`` itself or its
    nearest existing ancestor when that is not a folder (a file, ``/dev/null``, ...); else ``None``."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def make_dir(folder: Path | str) -> Path:
    """Create ``folder`` and its parents (nothing to do when it exists) and check it is writable.

    The run directories and the data caches are made with it. A folder that cannot be used is an
    ``OSError`` whose ``filename`` is the path at fault: ``NotADirectoryError`` when ``folder``
    or one of its parents is a file (:func:`obstacle`; that file named, ``strerror`` "not a folder"),
    ``PermissionError`` when it exists but this process may not write into it, else the
    system's own error (a read-only file system, a place under ``/proc``, ...).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        blocker = obstacle(folder)
        if blocker is not None:
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(blocker)) from None
        raise
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, "not writable", str(folder))
    return folder


def remove_dir(folder: Path | str, missing_ok: bool = False) -> None:
    """Delete ``folder``: renamed to a hidden ``.tmp-deleted-<name>-*`` sibling first, then removed.

    With ``missing_ok``, a folder that is not there (another process removed it first) is fine.
    """
    folder = Path(folder)
    trash = folder.parent / f".tmp-deleted-{folder.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    shutil.rmtree(trash, ignore_errors=True)


def try_lock(path: Path | str) -> int | None:
    """Take the exclusive lock of the file ``path`` (created if missing) without waiting.

    Returns the open descriptor holding the lock (close it with :func:`unlock`), or ``None`` when
    another process holds it; then :func:`lock_holder` says which. The lock is ``flock``'s: the
    kernel releases it when the process ends, however it ends (kill -9 included), so a crashed
    run never leaves a stale lock. The holder's pid and host are written into the file. On a
    file system without locks the descriptor is returned unlocked, with a warning.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as err:
        if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
            os.close(fd)
            raise
        warnings.warn(f"{path}: this file system does not support locks, so nothing keeps another "
                      "process out", RuntimeWarning, stacklevel=2)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except OSError:
        os.close(fd)
        raise
    return fd


def lock_holder(path: Path | str) -> str:
    """Who holds the lock file ``path`` (``pid 123 on host``), as it wrote there; '' when unknown."""
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def unlock(fd: int) -> None:
    """Release a lock taken by :func:`try_lock` (the file stays, empty of meaning)."""
    os.close(fd)


__all__ = ["atomic_dir", "atomic_write_bytes", "fsync_path", "fsync_tree", "lock_holder", "make_dir",
           "obstacle", "remove_dir", "temporary_sibling", "try_lock", "unlock"]
