"""The conditioner contract: networks from inputs (and history) to context tensors.

A conditioner is an ``nn.Module`` built with runtime argument ``in_shape`` (the event shape of
its input; for sequence conditioners the per-step features ``(F,)``) and, when its
parent needs a particular output, ``out_shape``. It states :meth:`output_shape` before it runs,
so parents allocate their own layers from it and shapes are checked early.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class Conditioner(nn.Module):
    """Base class of conditioners."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.requested_out_shape = None if out_shape is None else tuple(int(s) for s in out_shape)

    def output_shape(self) -> Any:
        """Event shape of the output (a tuple), or a dict name -> tuple for several outputs."""
        raise NotImplementedError
