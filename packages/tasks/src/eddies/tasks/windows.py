"""Windows of sequences as a map-style dataset, with a training jitter redrawn every epoch
(``particles``, ``exchange_rate``).

A window is ``(sequence, start)``: item ``x`` holds the sequence's frames ``start .. start + b - 1``
(the input) and ``y`` the next ``T`` (the target). A density model of data with exact ties or
exact determinism has no finite likelihood: a flow fitted to a constant change (the particles'
constant velocities; a pegged exchange rate, 34 % of whose training days do not move) shrinks it
without end, the NLL falls without bound and its gradient swamps the rest, the failure the
``cmu_mocap`` task's static channels showed. The cure is dequantisation (Theis, van den Oord &
Bethge, "A note on the evaluation of generative models", ICLR 2016): the training frames get a
small noise, drawn per frame of the split's sequences (so overlapping windows agree) from a
generator seeded by ``(seed, epoch)``, afresh each epoch (:meth:`Windows.set_epoch`, which the
trainer calls on the training split; a fixed draw could be memorised). Validation and test
windows are exact.

Example::

    >>> import torch
    >>> frames = torch.arange(10.0).reshape(1, 10, 1)           # one sequence of 10 frames
    >>> data = Windows(frames, torch.tensor([[0, 0], [0, 5]]), 3, 2)
    >>> data[1]["x"].flatten().tolist(), data[1]["y"].flatten().tolist(), len(data)
    ([5.0, 6.0, 7.0], [8.0, 9.0], 2)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

Jitter = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def gaussian(std: float) -> Jitter:
    """N(0, std^2) noise."""
    return lambda rng, shape: rng.standard_normal(shape) * std


def uniform(width: float | np.ndarray) -> Jitter:
    """U(-width / 2, width / 2) noise (``width`` broadcast over the frame's last axes)."""
    return lambda rng, shape: (rng.random(shape) - 0.5) * width


class Windows(Dataset):
    """``frames`` (N, S, *F) of N sequences, ``windows`` (W, 2) rows of (sequence, start), input
    length ``b`` and target length ``t``; ``extras`` name -> (W, ...) tensors added to each item;
    ``jitter`` (with ``seed``) the training noise of the module docstring, None for exact frames."""

    def __init__(self, frames: Tensor, windows: Tensor, b: int, t: int, extras: dict[str, Tensor] | None = None,
                 jitter: Jitter | None = None, seed: int = 0):
        self.exact = frames.double()
        self.windows, self.b, self.t = windows.long(), int(b), int(t)
        self.extras = dict(extras or {})
        self.jitter, self.seed = jitter, int(seed)
        self.steps = torch.arange(self.b + self.t)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Use the jitter of ``epoch`` (no-op without a jitter)."""
        values = self.exact
        if self.jitter is not None:
            rng = np.random.default_rng([self.seed, int(epoch)])
            values = values + torch.from_numpy(self.jitter(rng, tuple(values.shape)))
        self.frames = values.float()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} windows")
        rows = rows % max(len(self), 1)
        sequence, start = self.windows[rows].unbind(1)
        values = self.frames[sequence[:, None], start[:, None] + self.steps]  # (B, b + t, *F)
        items = {"x": values[:, :self.b], "y": values[:, self.b:], **{k: v[rows] for k, v in self.extras.items()}}
        return [{k: v[i] for k, v in items.items()} for i in range(len(rows))]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]

    def batch(self, indices: list[int]) -> dict[str, Tensor]:
        """The items ``indices`` stacked (for pictures)."""
        items = self.__getitems__(indices)
        return {k: torch.stack([item[k] for item in items]) for k in items[0]}
