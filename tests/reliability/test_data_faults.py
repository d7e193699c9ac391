"""Data faults: damaged caches, damaged or oversized sources, bad limits and data directories.

Each fault is one clear :class:`DataError` (or :class:`RecipeError`) naming the folder, file,
key or path; through ``apps/train.py`` it is one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import pickle
import re
import shutil
import tracemalloc
import zlib
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from eddies.core import DataError, RecipeError, load_recipe
from eddies.engine.cli import train_main
from eddies.tasks import cache as cache_module
from eddies.tasks import numpy_pickle
from eddies.tasks.cache import MANIFEST
from eddies.tasks.mnist_rows import MNISTRows
from eddies.tasks.numpy_pickle import load_numpy_pickle
from eddies.tasks.weizmann_horse import WeizmannHorse
from tests.command_line import ENV, app, error_lines, run_app
from tests.tasks.conftest import write_fake_mnist

FRMDN = Path(__file__).resolve().parents[1] / "recipes" / "tiny_frmdn.yaml"
LIMIT = {"train": 6, "validation": 2, "test": 2}


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch, tmp_path):
    """Each test starts as a new process would: nothing verified yet; caches under tmp_path."""
    monkeypatch.setattr(cache_module, "_verified", {})
    monkeypatch.setenv("EDDIES_DATA", str(tmp_path / "default_data"))


def new_process():
    """Forget which caches were verified, as a later run (another process) would."""
    cache_module._verified.clear()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    write_fake_mnist(path, sizes=(8, 4, 4))
    return path


def mnist(source, data_dir, limit=LIMIT):
    return MNISTRows(data_dir=data_dir, source=str(source), limit=limit)


def train(argv, monkeypatch, capsys):
    """apps/train.py in this process (:func:`run_app`): (exit code, its ``error:`` lines, stderr)."""
    code, _, err = run_app(train_main, argv, monkeypatch, capsys)
    assert "Traceback" not in err
    return code, error_lines(err), err


def frmdn_argv(source, data_dir, *more):
    return [f"recipe={FRMDN}", f"task.source={source}", f"data_dir={data_dir}", "train.epochs=1", *more]


# the Arrow cache --------------------------------------------------------------------------
def flip(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte in the middle of the pixel column, same size
    path.write_bytes(bytes(data))


def truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path):
    path.write_bytes(b"")


def remove(path: Path):
    path.unlink()


@pytest.mark.parametrize("damage", [flip, truncate, empty, remove])
@pytest.mark.parametrize("file", ["train/data-00000-of-00001.arrow", "train/state.json", "dataset_dict.json"])
def test_a_damaged_cache_file_is_one_error_naming_the_folder(damage, file, source, tmp_path):
    task = mnist(source, tmp_path / "data")
    before = task.dataset("train").pixels.clone()
    folder = task.cache_dir()
    damage(folder / file)
    new_process()
    with pytest.raises(DataError) as error:
        mnist(source, tmp_path / "data").dataset("train")
    message = str(error.value)
    assert f"the data cache {folder} is damaged: {file}" in message
    assert f"rm -r {folder}" in message and "rebuild it from the source" in message
    # following the advice rebuilds the same data
    shutil.rmtree(folder)
    assert torch.equal(mnist(source, tmp_path / "data").dataset("train").pixels, before)


def test_flipped_bytes_would_otherwise_train_silently(source, tmp_path):
    """The fault the checksums catch: pyarrow itself reads the flipped pixel without complaint."""
    task = mnist(source, tmp_path / "data")
    before = task.dataset("train").pixels.clone()
    arrow = task.cache_dir() / "train" / "data-00000-of-00001.arrow"
    flip(arrow)
    changed = torch.from_numpy(np.array(datasets.Dataset.from_file(str(arrow))["pixels"], dtype=np.uint8))
    assert changed.shape == before.shape and not torch.equal(changed, before)
    new_process()
    with pytest.raises(DataError, match="does not match its checksum"):
        task.dataset("train")


def test_a_change_within_the_same_process_is_caught_too(source, tmp_path):
    task = mnist(source, tmp_path / "data")
    task.dataset("train")
    truncate(task.cache_dir() / "train" / "data-00000-of-00001.arrow")  # size changes: hashed again
    with pytest.raises(DataError, match="is damaged: train/data-00000-of-00001.arrow does not match"):
        task.dataset("validation")


@pytest.mark.parametrize("content", [b"", b"{\"sha256\": ", b"[]", b"{\"sha256\": {}}"])
def test_a_damaged_manifest_is_one_error_naming_the_folder(content, source, tmp_path):
    task = mnist(source, tmp_path / "data")
    task.prepare()
    (task.cache_dir() / MANIFEST).write_bytes(content)
    new_process()
    with pytest.raises(DataError, match=rf"the data cache {re.escape(str(task.cache_dir()))} is damaged: "
                                        rf"its {MANIFEST} (is unreadable|does not list dataset_dict.json)"):
        mnist(source, tmp_path / "data").dataset("test")


def test_a_cache_without_checksums_from_an_older_version_is_rebuilt_saying_so(source, tmp_path, capsys):
    task = mnist(source, tmp_path / "data")
    before = task.dataset("train").pixels.clone()
    (task.cache_dir() / MANIFEST).unlink()  # as an eddies from before the checksums left it
    flip(task.cache_dir() / "train" / "data-00000-of-00001.arrow")  # so unverifiable data is not kept
    capsys.readouterr()
    new_process()
    again = mnist(source, tmp_path / "data")
    assert torch.equal(again.dataset("train").pixels, before)
    assert f"the data cache {task.cache_dir()} has no checksums (built by an older eddies); rebuilding it" in (
        capsys.readouterr().err)
    assert (task.cache_dir() / MANIFEST).is_file()
    assert sorted(p.name for p in task.cache_dir().parent.iterdir()) == [task.cache_dir().name]


def test_the_cache_is_hashed_once_per_process_not_per_item(source, tmp_path, monkeypatch):
    task = mnist(source, tmp_path / "data")
    task.prepare()
    hashed = []
    real = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda path: hashed.append(path) or real(path))
    new_process()
    for split in ("train", "validation", "test", "train"):
        data = mnist(source, tmp_path / "data").dataset(split)
        [data[i] for i in range(len(data))]
    files = sorted(p for p in task.cache_dir().rglob("*") if p.is_file() and p.name != MANIFEST)
    assert sorted(p for p in hashed if task.cache_dir() in p.parents) == files  # each once, at the first open


def test_the_weizmann_horse_cache_is_verified_too(tmp_path):
    limit = {"train": 1, "validation": 1, "test": 1}
    task = WeizmannHorse(data_dir=tmp_path / "data", limit=limit)
    try:
        task.prepare()
    except DataError as error:
        pytest.skip(f"the Weizmann Horse source is not available: {error}")
    flip(task.cache_dir() / "test" / "data-00000-of-00001.arrow")
    new_process()
    with pytest.raises(DataError, match=f"weizmann_horse: the data cache {re.escape(str(task.cache_dir()))} "
                                        "is damaged: test/data-00000-of-00001.arrow"):
        WeizmannHorse(data_dir=tmp_path / "data", limit=limit).dataset("test")


def test_a_damaged_cache_through_train_is_one_error_line(source, tmp_path, monkeypatch, capsys):
    recipe = load_recipe(str(FRMDN), [f"task.source={source}"])
    task = recipe.task.build(data_dir=tmp_path / "data")
    task.prepare()
    flip(task.cache_dir() / "train" / "data-00000-of-00001.arrow")
    new_process()
    code, errors, _ = train(frmdn_argv(source, tmp_path / "data", f"run_dir={tmp_path / 'run'}"), monkeypatch, capsys)
    assert code == 2
    assert errors == [f"error: mnist_rows: the data cache {task.cache_dir()} is damaged: train/data-00000-of-00001"
                      f".arrow does not match its checksum (changed since it was built); delete that folder "
                      f"(rm -r {task.cache_dir()}) and run again to rebuild it from the source"]


# compressed sources -----------------------------------------------------------------------
def truncated_gzip(data: bytes) -> bytes:
    return data[: len(data) - 20]  # cut inside the deflate stream


def bad_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]  # the CRC-32 of the gzip trailer


def bad_deflate(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("damage", [truncated_gzip, bad_crc, bad_deflate])
def test_a_damaged_gzip_source_is_one_error_naming_the_file(damage, source, tmp_path, monkeypatch, capsys):
    source.write_bytes(damage(source.read_bytes()))
    with pytest.raises(DataError, match=rf"^{re.escape(str(source))}: not a readable (gzip file|pickle)"):
        load_numpy_pickle(source)
    with pytest.raises(DataError, match=re.escape(str(source))):
        mnist(source, tmp_path / "data").prepare()
    code, errors, _ = train(frmdn_argv(source, tmp_path / "data2", f"run_dir={tmp_path / 'run'}"), monkeypatch, capsys)
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {source}: not a readable")
    assert not list((tmp_path / "data2" / "mnist_rows").iterdir())  # nothing half-built published


def test_the_crc_failure_is_said(source):
    source.write_bytes(bad_crc(source.read_bytes()))
    with pytest.raises(DataError, match="truncated or corrupt .*CRC check failed"):
        load_numpy_pickle(source)


def zeros_gzip(path: Path, size: int) -> Path:
    """A gzip file of ``size`` zero bytes (a "bomb": about 1000 times smaller), written in chunks."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(packer.compress(bytes(1 << 20)))
        f.write(packer.flush())
    return path


def test_a_gzip_bomb_stops_at_the_bound_in_bounded_memory(tmp_path, monkeypatch):
    bomb = zeros_gzip(tmp_path / "bomb.pkl.gz", 64 << 20)
    assert bomb.stat().st_size < 100_000
    monkeypatch.setattr(numpy_pickle, "MAX_DECOMPRESSED_BYTES", 4 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"{re.escape(str(bomb))}: decompresses to more than 4194304 bytes"):
            load_numpy_pickle(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # the bound plus a chunk, never the 64 MiB
    with pytest.raises(DataError, match="decompresses to more than 1024 bytes"):
        load_numpy_pickle(bomb, max_bytes=1024)


def test_a_source_within_the_bound_loads(tmp_path):
    blob = io.BytesIO()
    with gzip.GzipFile(fileobj=blob, mode="wb") as f:
        pickle.dump((np.arange(100),), f, protocol=2)
    data = blob.getvalue()
    assert load_numpy_pickle(io.BytesIO(data), max_bytes=len(gzip.decompress(data)))[0].sum() == 4950
    with pytest.raises(DataError, match="decompresses to more than"):
        load_numpy_pickle(io.BytesIO(data), max_bytes=len(gzip.decompress(data)) - 1)


def test_a_gzip_bomb_through_train_is_one_error_line(tmp_path, monkeypatch, capsys):
    bomb = zeros_gzip(tmp_path / "mnist.pkl.gz", 8 << 20)
    monkeypatch.setattr(numpy_pickle, "MAX_DECOMPRESSED_BYTES", 1 << 20)
    code, errors, _ = train(frmdn_argv(bomb, tmp_path / "data", f"run_dir={tmp_path / 'run'}"), monkeypatch, capsys)
    assert code == 2
    assert errors == [f"error: {bomb}: decompresses to more than 1048576 bytes, the bound for a data source "
                      "(eddies.tasks.numpy_pickle.MAX_DECOMPRESSED_BYTES)"]


# task.limit ---------------------------------------------------------------------------------
@pytest.mark.parametrize("task_type", ["mnist_rows", "weizmann_horse"])
@pytest.mark.parametrize("value", ["-1", "true", "yes", "2.5", "'-3'", "abc", "[1]"])
def test_an_invalid_limit_is_a_recipe_error_naming_the_key(task_type, value):
    with pytest.raises(RecipeError, match=r"^task\.limit\.train: ") as error:
        load_recipe(str(FRMDN), [f"task.type={task_type}", f"task.limit.train={value}"])
    assert error.value.path == "task.limit.train"


def test_a_negative_limit_in_a_recipe_file_names_the_key_and_the_file(tmp_path):
    recipe = tmp_path / "negative.yaml"
    recipe.write_text(FRMDN.read_text().replace("limit: {train: 256,", "limit: {train: -256,"))
    with pytest.raises(RecipeError, match=rf"^task\.limit\.train: .*greater than or equal to 0.*{recipe.name}"):
        load_recipe(str(recipe))


@pytest.mark.parametrize("task_class", [MNISTRows, WeizmannHorse])
@pytest.mark.parametrize("limit, key", [({"train": -1}, "train"), ({"test": True}, "test"),
                                        ({"validation": 1.0}, "validation"), ({"valid": 1}, "valid")])
def test_tasks_built_in_python_check_their_limit_too(task_class, limit, key, tmp_path):
    with pytest.raises(RecipeError, match=rf"^task\.limit\.{key}: "):
        task_class(data_dir=tmp_path, limit=limit)


def test_a_negative_limit_through_train_is_one_error_line(source, tmp_path, monkeypatch, capsys):
    code, errors, _ = train(frmdn_argv(source, tmp_path / "data", "task.limit.train=-3", f"run_dir={tmp_path / 'r'}"),
                            monkeypatch, capsys)
    assert code == 2
    assert errors == ["error: task.limit.train: Input should be greater than or equal to 0 "
                      "(from the command-line override task.limit.train=-3)"]


# the data directory -----------------------------------------------------------------------
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


def under_a_file(tmp_path: Path) -> Path:
    return a_file(tmp_path) / "data"


def under_proc(tmp_path: Path) -> Path:
    return Path("/proc/eddies_data")


def under_proc_self(tmp_path: Path) -> Path:
    return Path("/proc/self/eddies_data")


BAD_DATA_DIRS = [a_file, under_a_file, under_proc, under_proc_self]


@pytest.mark.parametrize("where", BAD_DATA_DIRS)
def test_an_unwritable_data_dir_is_one_error_naming_it(where, source, tmp_path):
    data_dir = where(tmp_path)
    with pytest.raises(DataError, match=rf"^mnist_rows: cannot write the data cache under data_dir "
                                        rf"{re.escape(str(data_dir))} \(.+\); set data_dir=PATH or \$EDDIES_DATA"):
        mnist(source, data_dir).prepare()


@pytest.mark.parametrize("where", BAD_DATA_DIRS)
def test_an_unwritable_data_dir_through_train_is_one_error_line(where, source, tmp_path, monkeypatch, capsys):
    data_dir = where(tmp_path)
    code, errors, _ = train(frmdn_argv(source, data_dir, f"run_dir={tmp_path / 'run'}"), monkeypatch, capsys)
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith(f"error: mnist_rows: cannot write the data cache under data_dir {data_dir} (")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_data_dir_is_one_error_naming_it(source, tmp_path):
    data_dir = tmp_path / "read_only"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    try:
        with pytest.raises(DataError, match=rf"cannot write the data cache under data_dir {re.escape(str(data_dir))}"):
            mnist(source, data_dir).prepare()
    finally:
        data_dir.chmod(0o755)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_failing_write_is_one_error_and_publishes_nothing(code, source, tmp_path, monkeypatch):
    """Out of space (or a file system turned read-only) while the cache is written."""
    def fail(self, path, *args, **kwargs):
        Path(path, "partial.arrow").write_bytes(b"half")
        raise OSError(code, os.strerror(code), str(Path(path, "partial.arrow")))

    with monkeypatch.context() as patch:
        patch.setattr(datasets.DatasetDict, "save_to_disk", fail)
        with pytest.raises(DataError, match=rf"cannot write the data cache under data_dir {re.escape(str(tmp_path))}"
                                            rf"/data \({re.escape(os.strerror(code))}: .*partial.arrow\)"):
            mnist(source, tmp_path / "data").prepare()
    assert list((tmp_path / "data" / "mnist_rows").iterdir()) == []
    mnist(source, tmp_path / "data").prepare()  # space freed: the next run builds it


def test_the_real_command_line_prints_one_error_line(source, tmp_path):
    """One case through the real subprocess: a data_dir that is a file."""
    data_dir = a_file(tmp_path)
    proc = app("train", *frmdn_argv(source, data_dir, f"run_dir={tmp_path / 'run'}"), check=False, timeout=300,
               env={**ENV, "EDDIES_DATA": str(tmp_path / "unused")})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: mnist_rows: cannot write the data cache under data_dir {data_dir} (not a folder: "
        f"{data_dir}); set data_dir=PATH or $EDDIES_DATA to a writable folder"]
