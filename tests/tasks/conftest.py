"""Fixtures of the task tests: a small synthetic mnist.pkl.gz with the real file's layout, and one
temporary EDDIES_DATA per test module (``pytestmark = pytest.mark.usefixtures("module_data_dir")``)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest


def write_fake_mnist(path, sizes=(40, 12, 12), seed=0):
    """A (train, validation, test) tuple of (float32 images k/256 of shape (N, 784), int64 labels)."""
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        levels = rng.integers(0, 256, size=(n, 784))
        levels[:, 0], levels[:, 1] = 0, 255  # both ends of the 8-bit range occur
        parts.append(((levels / 256).astype(np.float32), (np.arange(n) % 10).astype(np.int64)))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    return [(np.rint(images * 256).astype(np.uint8), labels) for images, labels in parts]


@pytest.fixture
def fake_mnist(tmp_path):
    """(path of the fake source, its 8-bit levels and labels per split)."""
    path = tmp_path / "mnist.pkl.gz"
    return path, write_fake_mnist(path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("eddies_data")


@pytest.fixture
def module_data_dir(data_root, monkeypatch):
    """Every cache of a test goes to a temporary EDDIES_DATA shared within its module."""
    monkeypatch.setenv("EDDIES_DATA", str(data_root))
