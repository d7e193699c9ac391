"""Seeding and the capture/restore of every random number generator a run draws from.

A run is made deterministic by three rules (see docs/training.md):

1. before the model is built every process calls :func:`seed_everything` with the recipe's
   ``seed``, so all ranks initialise identical parameters;
2. after the build, rank ``r > 0`` reseeds with :func:`derive_seed` ``(seed, "rank", r)`` so the
   noise models draw during training (dropout, VAE samples) differs between ranks;
3. the data order never touches these global generators: it comes from private generators seeded
   by ``derive_seed(seed, "epoch", e)`` (:mod:`eddies.engine.data`).

Checkpoints store :func:`rng_state` of every rank (python's ``random``, numpy's global generator,
torch's CPU generator and each CUDA device's), and resuming restores them with
:func:`set_rng_state`. The state is a tree of JSON scalars and tensors that
:func:`eddies.engine.serialization.split_state` stores as safetensors plus JSON.

Example::

    >>> import torch
    >>> seed_everything(0); state = rng_state(); a = torch.rand(2)
    >>> set_rng_state(state); bool((torch.rand(2) == a).all())
    True
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *labels: Any) -> int:
    """A 63-bit seed determined by ``seed`` and the labels (stable across runs and machines)."""
    digest = hashlib.sha256(repr((seed, *labels)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The states of python, numpy, torch CPU and CUDA generators as a tree of scalars and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`rng_state` (CUDA states only when CUDA is present)."""
    random.setstate(_tuples(state["python"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and "cuda" in state:
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _tuples(node: Any) -> Any:
    """Python's ``random.setstate`` insists on tuples all the way down."""
    return tuple(_tuples(v) for v in node) if isinstance(node, (list, tuple)) else node


@contextmanager
def forked_rng(seed: int) -> Iterator[None]:
    """Run the body with every generator seeded by ``seed``, then restore the states from before.

    What the body draws (python, numpy, torch CPU and CUDA) is a function of ``seed`` alone, and
    the streams outside continue as if the body had never run (the trainer's task metrics).
    """
    saved = rng_state()
    seed_everything(seed)
    try:
        yield
    finally:
        set_rng_state(saved)
