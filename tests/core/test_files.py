"""Atomic publication of folders and files (eddies.core.files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eddies.core.files import atomic_dir, atomic_write_bytes


class Crash(Exception):
    pass


def _visible(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_folder_appears_complete_or_not_at_all(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(Crash), atomic_dir(final) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        assert not final.exists()  # nothing visible while writing
        raise Crash
    assert _visible(tmp_path) == []  # no final folder, no temporary left
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("2")
    assert _visible(tmp_path) == ["out"] and (final / "sub" / "b.txt").read_text() == "2"


def test_a_concurrent_winner_is_kept_unless_replacing(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "who").write_text("loser")
        with atomic_dir(final) as other:  # another writer finishes first
            (other / "who").write_text("winner")
    assert (final / "who").read_text() == "winner" and _visible(tmp_path) == ["out"]
    with atomic_dir(final, replace=True) as tmp:
        (tmp / "new").write_text("replaced")
    assert _visible(final) == ["new"] and _visible(tmp_path) == ["out"]


def test_atomic_write_bytes_replaces_a_file(tmp_path):
    target = tmp_path / "latest"
    atomic_write_bytes(target, b"step-1\n")
    atomic_write_bytes(target, b"step-2\n")
    assert target.read_bytes() == b"step-2\n" and _visible(tmp_path) == ["latest"]


def test_make_dir_names_the_path_in_the_way_and_remove_dir_may_find_nothing(tmp_path):
    from eddies.core.files import make_dir, remove_dir

    assert make_dir(tmp_path / "a" / "b").is_dir() and make_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "file").write_text("")
    for target in (tmp_path / "file", tmp_path / "file" / "sub" / "deeper"):
        with pytest.raises(NotADirectoryError) as err:
            make_dir(target)
        assert (err.value.filename, err.value.strerror) == (str(tmp_path / "file"), "not a folder")
    if Path("/dev/null").exists():  # not a file, not a folder either
        with pytest.raises(NotADirectoryError) as err:
            make_dir("/dev/null/run")
        assert err.value.filename == "/dev/null"
    remove_dir(tmp_path / "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # renamed away, then deleted
    remove_dir(tmp_path / "a", missing_ok=True)
    with pytest.raises(FileNotFoundError):
        remove_dir(tmp_path / "a")
