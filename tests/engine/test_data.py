"""Deterministic, resumable, process-independent data order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eddies.engine.data import ShardBatchSampler, TrainBatchSampler


def _steps(n, batch, epoch, world=1, accum=1, start=0, seed=0):
    """The global batches (as sorted index lists) the ranks see together, per step."""
    per_rank = [list(TrainBatchSampler(n, batch, seed, epoch, start, world, r, accum)) for r in range(world)]
    steps = []
    for k in range(len(per_rank[0]) // accum):
        chunks = [per_rank[r][k * accum + m] for r in range(world) for m in range(accum)]
        assert all(len(c) == batch // (world * accum) for c in chunks)
        steps.append(sorted(i for c in chunks for i in c))
    return steps


@given(n=st.integers(8, 60), world=st.sampled_from([1, 2, 4]), accum=st.sampled_from([1, 2]),
       epoch=st.integers(0, 3))
def test_global_batches_do_not_depend_on_processes_or_accumulation(n, world, accum, epoch):
    batch = 4 * world * accum if 4 * world * accum <= n else world * accum
    single = _steps(n, batch, epoch)
    assert _steps(n, batch, epoch, world, accum) == single
    assert len(single) == n // batch
    flat = [i for s in single for i in s]
    assert len(set(flat)) == len(flat) == (n // batch) * batch  # no repeats within an epoch


def test_starting_mid_epoch_gives_the_remaining_steps():
    full = _steps(50, 8, epoch=2)
    assert _steps(50, 8, epoch=2, start=4) == full[4:]
    assert len(TrainBatchSampler(50, 8, 0, 2, start=4)) == len(full) - 4


def test_epochs_and_seeds_shuffle_differently():
    assert _steps(40, 8, 0) != _steps(40, 8, 1)
    assert _steps(40, 8, 0, seed=0) != _steps(40, 8, 0, seed=1)
    assert _steps(40, 8, 1) == _steps(40, 8, 1)


def test_indivisible_batch_is_refused():
    with pytest.raises(ValueError, match=r"batch_size=10.*2 x 2"):
        TrainBatchSampler(40, 10, 0, 0, world=2, grad_accum=2)


@given(n=st.integers(1, 40), world=st.integers(1, 4), batch=st.integers(1, 7))
def test_shards_cover_every_sample_once(n, world, batch):
    seen = [i for r in range(world) for b in ShardBatchSampler(n, batch, world, r) for i in b]
    assert sorted(seen) == list(range(n))
    assert all(len(b) <= batch for r in range(world) for b in ShardBatchSampler(n, batch, world, r))
