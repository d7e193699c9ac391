"""The shared Arrow cache (eddies.tasks.cache): key, atomic build, splits, raw source."""

from __future__ import annotations

import hashlib
import json

import datasets
import numpy as np
import pytest

from eddies.core import DataError, RecipeError
from eddies.tasks.cache import (
    COMPLETE,
    MANIFEST,
    SPLITS,
    ArrowCache,
    cache_key,
    check_limit,
    check_split,
    file_sha256,
    source_path,
)
from eddies.tasks.mnist_rows import CACHE_FORMAT, MNISTRows


class Crash(Exception):
    pass


def _splits(value):
    return {s: datasets.Dataset.from_dict({"v": [value, value]}) for s in SPLITS}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"raw bytes")
    return path


def test_the_key_hashes_format_source_content_and_settings(tmp_path, source):
    digest = hashlib.sha256(b"raw bytes").hexdigest()
    text = json.dumps({"format": 1, "source_sha256": digest, "limit": {"train": 7}}, sort_keys=True)
    assert cache_key(digest, {"limit": {"train": 7}}) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert cache_key(digest, {"limit": {"train": 7}}) == "c1f972eaebe24a81"  # pinned: caches stay valid
    cache = ArrowCache.for_source(tmp_path / "data", "demo", source, {"limit": {"train": 7}})
    assert cache.path == tmp_path / "data" / "demo" / "c1f972eaebe24a81"
    others = {cache_key(digest, {"limit": None}), cache_key(digest, {"limit": {"train": 7}}, format=2),
              cache_key(hashlib.sha256(b"other").hexdigest(), {"limit": {"train": 7}})}
    assert len(others) == 3 and cache.path.name not in others
    with pytest.raises(ValueError, match="reserved"):
        cache_key(digest, {"format": 3})


def test_mnist_rows_keeps_its_cache_key(tmp_path, fake_mnist):
    """The folder the task used before the shared helper existed (same formula), so no rebuild."""
    task = MNISTRows(data_dir=tmp_path, source=str(fake_mnist[0]), limit={"train": 5})
    digest = hashlib.sha256(fake_mnist[0].read_bytes()).hexdigest()
    key = json.dumps({"format": CACHE_FORMAT, "source_sha256": digest, "limit": {"train": 5}}, sort_keys=True)
    assert task.cache_dir() == tmp_path / "mnist_rows" / hashlib.sha256(key.encode()).hexdigest()[:16]


def test_a_build_killed_half_way_is_never_read(tmp_path, source):
    cache = ArrowCache.for_source(tmp_path, "demo", source, {})

    def crashing():
        raise Crash

    with pytest.raises(Crash):
        cache.build(crashing)
    assert not cache.ready() and not cache.path.exists()
    # a writer killed inside save_to_disk leaves only a hidden folder, never the cache's name
    with pytest.raises(Crash):
        cache.build(lambda: {**_splits(1), "test": _Exploding()})
    assert not cache.ready() and not cache.path.exists()
    assert [p.name for p in cache.path.parent.iterdir()] == []
    with pytest.raises(DataError, match="not built; call task.prepare"):
        cache.split("train")
    cache.build(lambda: _splits(2))
    assert cache.ready() and cache.split("test")["v"] == [2, 2]
    cache.build(lambda: pytest.fail("built twice"))  # idempotent


class _Exploding(datasets.Dataset):
    """A split whose saving dies half way (after the other splits' files were written)."""

    def __init__(self):
        pass

    def save_to_disk(self, *args, **kwargs):
        raise Crash


def test_a_concurrent_build_that_finished_first_wins(tmp_path, source):
    cache = ArrowCache.for_source(tmp_path, "demo", source, {})

    def slow():
        cache.build(lambda: _splits(1))  # another process finishes while this one converts
        return _splits(2)

    cache.build(slow)
    assert cache.split("train")["v"] == [1, 1]
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]


def test_splits_and_sources_are_checked(tmp_path, source):
    assert check_split("demo", "validation") == "validation"
    with pytest.raises(DataError, match="demo: unknown split 'valid'; splits are train, validation, test"):
        check_split("demo", "valid")
    cache = ArrowCache.for_source(tmp_path, "demo", source, {})
    with pytest.raises(DataError, match=r"made splits \['train'\], expected \['train', 'validation', 'test'\]"):
        cache.build(lambda: {"train": _splits(1)["train"]})
    assert source_path("demo", str(source), None, "hint") == source
    assert source_path("demo", None, source, "hint") == source
    with pytest.raises(DataError, match="demo: raw source .*nowhere does not exist; get it here"):
        source_path("demo", str(tmp_path / "nowhere"), source, "get it here")
    with pytest.raises(DataError, match="demo: no raw source found .*; get it here"):
        source_path("demo", None, None, "get it here")


def test_the_in_memory_task_uses_the_same_split_names():
    from eddies.tasks.synthetic import SyntheticRegression

    task = SyntheticRegression(8, 4, 4, 3, 2, 0.1, 0)
    task.prepare()
    assert [len(task.dataset(s)) for s in SPLITS] == [8, 4, 4]
    with pytest.raises(DataError, match="synthetic_regression: unknown split 'val'; splits are train, validation, test"):
        task.dataset("val")


def test_the_build_publishes_a_checksum_of_every_file(tmp_path, source):
    cache = ArrowCache.for_source(tmp_path, "demo", source, {})
    cache.build(lambda: _splits(1))
    sums = json.loads((cache.path / MANIFEST).read_text())["sha256"]
    files = sorted(p for p in cache.path.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert sorted(sums) == sorted(p.relative_to(cache.path).as_posix() for p in files)
    assert COMPLETE in sums and "train/state.json" in sums
    assert all(sums[p.relative_to(cache.path).as_posix()] == file_sha256(p) for p in files)
    cache.verify()
    (cache.path / MANIFEST).unlink()
    assert not cache.ready()  # an older eddies' cache: rebuilt by the next build
    with pytest.raises(DataError, match="not built"):
        cache.split("train")
    cache.build(lambda: _splits(3))
    assert cache.ready() and cache.split("train")["v"] == [3, 3]


def test_limits_are_counts_of_known_splits():
    assert check_limit("demo", None) == {}
    assert check_limit("demo", {"train": 0, "test": np.int64(5)}) == {"train": 0, "test": 5}
    assert type(check_limit("demo", {"test": np.int64(5)})["test"]) is int
    for limit, message in [({"train": -1}, "got -1"), ({"train": True}, "got True"), ({"train": 2.0}, "got 2.0"),
                           ({"trian": 1}, "unknown split 'trian'")]:
        with pytest.raises(RecipeError, match=rf"^task\.limit\.{next(iter(limit))}: demo: .*{message}"):
            check_limit("demo", limit)


def test_rebuilding_an_old_cache_keeps_a_good_one_published_meanwhile(tmp_path, source):
    cache = ArrowCache.for_source(tmp_path, "demo", source, {})
    cache.build(lambda: _splits(1))
    (cache.path / MANIFEST).unlink()  # as an eddies from before the checksums left it

    def slow():
        cache.build(lambda: _splits(2))  # another process rebuilds it while this one converts
        return _splits(3)

    cache.build(slow)
    assert cache.split("train")["v"] == [2, 2]
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]
