"""Deterministic, resumable data order for training and sharded evaluation across processes.

Training data order (the global view): epoch ``e`` shuffles the training split with a private
generator seeded by ``derive_seed(seed, "epoch", e)`` and cuts it into ``n // batch_size`` global
batches (the incomplete last one is dropped, so every optimizer step sees exactly
``train.batch_size`` samples). Global batch ``k`` is cut into ``world * grad_accum`` equal
micro-batches; rank ``r`` runs micro-batches ``m * world + r`` for ``m = 0 .. grad_accum - 1``.
The samples of step ``k`` are therefore a function of (seed, epoch, k) alone: resuming in the
middle of an epoch starts the sampler at ``k`` (no batches are drawn and thrown away), and the
union over ranks of one step's micro-batches is the same global batch whatever the number of
processes, so the mean gradient does not depend on it.

Evaluation: rank ``r`` takes samples ``r, r + world, ...`` in order, without padding or
duplicates, and the engine sums per-sample quantities across ranks.

Example::

    >>> sampler = TrainBatchSampler(10, batch_size=4, seed=0, epoch=0)
    >>> len(sampler), [len(b) for b in sampler]
    (2, [4, 4])
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from eddies.engine.rng import derive_seed


class TrainBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of one epoch, from global step ``start`` on."""

    def __init__(
        self, n: int, batch_size: int, seed: int, epoch: int, start: int = 0,
        world: int = 1, rank: int = 0, grad_accum: int = 1,
    ):
        parts = world * grad_accum
        if batch_size % parts:
            raise ValueError(
                f"train.batch_size={batch_size} must be divisible by processes x grad_accum = "
                f"{world} x {grad_accum} = {parts}"
            )
        self.n, self.batch_size, self.seed, self.epoch, self.start = n, batch_size, seed, epoch, start
        self.world, self.rank, self.grad_accum = world, rank, grad_accum
        self.micro = batch_size // parts

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start) * self.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", self.epoch))
        order = torch.randperm(self.n, generator=generator).tolist()
        for step in range(self.start, self.steps_per_epoch):
            batch = order[step * self.batch_size:(step + 1) * self.batch_size]
            for m in range(self.grad_accum):
                chunk = m * self.world + self.rank
                yield batch[chunk * self.micro:(chunk + 1) * self.micro]


class ShardBatchSampler(Sampler[list[int]]):
    """Rank ``rank``'s samples ``rank, rank + world, ...`` in batches of ``batch_size``."""

    def __init__(self, n: int, batch_size: int, world: int = 1, rank: int = 0):
        self.indices = list(range(rank, n, world))
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for i in range(0, len(self.indices), self.batch_size):
            yield self.indices[i:i + self.batch_size]


def loader(dataset: Dataset, batch_sampler: Sampler[list[int]], num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``batch_sampler`` that draws nothing from torch's global generator.

    (Without its own ``generator`` a DataLoader takes a base seed from the global generator each
    time an iterator is created, which would make a resumed run draw different model noise.)
    """
    return DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=num_workers,
        generator=torch.Generator().manual_seed(0), persistent_workers=False,
    )
