"""The conditioner contracts: networks from inputs (and history) to context tensors.

A :class:`Conditioner` is an ``nn.Module`` built with runtime argument ``in_shape`` (the event
shape of its input; for sequence conditioners the per-step input shape) and, when its parent
needs a particular output, ``out_shape``. It states :meth:`~Conditioner.output_shape` before it
runs, so parents allocate their own layers from it and shapes are checked early. ``forward``
takes ``(*batch, *in_shape)`` and returns ``(*batch, *output_shape())``; row ``i`` of the output
depends on row ``i`` of the input only (batch independence).

A :class:`SequenceConditioner` runs a recurrence over a time axis. Its steps may be vectors
(``lstm``, ``gru``: ``in_shape = (F,)``) or images (``predrnn``, ``motiongru``:
``in_shape = (C, H, W)``). Three methods, which must agree:

- ``initial_state(batch, device=None, dtype=None)``: the state before the first step;
- ``step(x_t, state) -> (out_t, state)``: one step, ``x_t`` of shape ``(B, *in_shape)``,
  ``out_t`` of shape ``(B, *output_shape())``;
- ``forward(inputs, state=None)``: teacher forcing over ``inputs`` of shape
  ``(B, T, *in_shape)``, returning ``(B, T, *output_shape())`` equal to calling ``step`` T times
  from ``state`` (or ``initial_state``): output ``t`` depends on inputs ``1..t`` only (causal).

``output_shape()`` of a sequence conditioner returns one tuple (the per-step output shape).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class Conditioner(nn.Module):
    """Base class of conditioners."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.requested_out_shape = None if out_shape is None else tuple(int(s) for s in out_shape)

    def output_shape(self) -> Any:
        """Event shape of the output (a tuple), or a dict name -> tuple for several outputs."""
        raise NotImplementedError


class SequenceConditioner(Conditioner):
    """A causal recurrence over time with a step API; see the module docstring for the contract."""

    def output_shape(self) -> tuple[int, ...]:
        """The per-step output event shape (one tuple)."""
        raise NotImplementedError

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Any:
        """The state before the first step for ``batch`` sequences."""
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: ``x`` (B, *in_shape) and the state in; ``(B, *output_shape())`` and the new state out."""
        raise NotImplementedError

    def forward(self, inputs: Tensor, state: Any = None) -> Tensor:
        """Teacher-forced outputs ``(B, T, *output_shape())`` for ``inputs`` (B, T, *in_shape)."""
        raise NotImplementedError
