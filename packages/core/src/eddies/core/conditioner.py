"""The conditioner contracts, written in :class:`Conditioner` and :class:`SequenceConditioner`:
networks from inputs (and history) to context tensors."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from eddies.core.errors import ShapeError


class Conditioner(nn.Module):
    """Base class of conditioners: networks from an input to context tensors.

    A :class:`Conditioner` is an ``nn.Module`` built with runtime argument ``in_shape`` (the event
    shape of its input; for sequence conditioners the per-step input shape) and, when its parent
    needs a particular output, ``out_shape``. It states :meth:`~Conditioner.output_shape` before it
    runs, so parents allocate their own layers from it and shapes are checked early. ``forward``
    takes ``(*batch, *in_shape)`` and returns ``(*batch, *output_shape())``; row ``i`` of the output
    depends on row ``i`` of the input only (batch independence, in ``eval`` mode: batch statistics
    of a training-mode normaliser are the one allowed exception). A requested ``out_shape`` is
    either honoured exactly (``output_shape() == out_shape``) or refused with a ``ShapeError``.
    """

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.requested_out_shape = None if out_shape is None else tuple(int(s) for s in out_shape)

    def output_shape(self) -> Any:
        """Event shape of the output (a tuple), or a dict name -> tuple for several outputs."""
        raise NotImplementedError


class SequenceConditioner(Conditioner):
    """A causal recurrence over time with a step API.

    A :class:`SequenceConditioner` runs a recurrence over a time axis. Its steps may be vectors
    (``lstm``, ``gru``: ``in_shape = (F,)``) or images (``predrnn``, ``motiongru``:
    ``in_shape = (C, H, W)``). Three methods, which must agree:

    - ``initial_state(batch, device=None, dtype=None)``: the state before the first step (any
      structure of tensors whose first axis, or second for stacked layers, is the batch);
      ``None`` means the device and floating dtype of the module's parameters;
    - ``step(x_t, state) -> (out_t, state)``: one step, ``x_t`` of shape ``(B, *in_shape)``,
      ``out_t`` of shape ``(B, *output_shape())``;
    - ``forward(inputs, state=None)``: teacher forcing over ``inputs`` of shape
      ``(B, T, *in_shape)``, returning ``(B, T, *output_shape())`` equal to calling ``step`` T times
      from ``state`` (or ``initial_state``), so output ``t`` depends on inputs ``1..t`` only
      (causal), and row ``b`` on sequence ``b`` only.

    ``output_shape()`` of a sequence conditioner returns one tuple (the per-step output shape).

    A subclass writes ``output_shape``, ``initial_state`` and ``step``; the base class's
    :meth:`SequenceConditioner.scan` runs ``step`` over the time axis and returns the outputs and
    the final state (to continue a warmed-up sequence with ``step``), and ``forward`` is
    ``scan(...)[0]``. A subclass may override ``scan`` with a fused kernel (``lstm`` and ``gru`` run
    ``torch.nn.LSTM``/``GRU`` over the whole sequence) as long as it equals stepping. The
    conditioner conformance kit (:mod:`eddies.core.testing.conditioners`) checks all of this::

        >>> import torch
        >>> class RunningSum(SequenceConditioner):   # out_t = s_t = s_{t-1} + w * x_t
        ...     def __init__(self, *, in_shape, out_shape=None):
        ...         super().__init__(in_shape, out_shape)
        ...         self.w = torch.nn.Parameter(torch.ones(self.in_shape))
        ...     def output_shape(self):
        ...         return self.in_shape
        ...     def initial_state(self, batch, device=None, dtype=None):
        ...         return torch.zeros(batch, *self.in_shape, **self.state_options(device, dtype))
        ...     def step(self, x, state):
        ...         self.check_step(x)
        ...         state = state + self.w * x
        ...         return state, state
        >>> net = RunningSum(in_shape=(2,))
        >>> net(torch.ones(1, 3, 2))[0, :, 0].tolist()
        [1.0, 2.0, 3.0]
        >>> out, state = net.scan(torch.ones(1, 2, 2))   # warm up on a history, then step on
        >>> net.step(torch.ones(1, 2), state)[0][0].tolist()
        [3.0, 3.0]
    """

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

    def scan(self, inputs: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Outputs ``(B, T, *output_shape())`` for ``inputs`` (B, T, *in_shape) and the state after
        the last step: ``step`` T times from ``state`` (``initial_state`` when ``None``)."""
        self.check_sequence(inputs)
        if state is None:
            state = self.initial_state(inputs.shape[0], inputs.device, inputs.dtype)
        outputs = []
        for x in inputs.unbind(1):
            out, state = self.step(x, state)
            outputs.append(out)
        return torch.stack(outputs, 1), state

    def forward(self, inputs: Tensor, state: Any = None) -> Tensor:
        """Teacher-forced outputs ``(B, T, *output_shape())`` for ``inputs`` (B, T, *in_shape)."""
        return self.scan(inputs, state)[0]

    # helpers for implementations -------------------------------------------------------------

    def check_sequence(self, inputs: Tensor) -> None:
        """Raise ``ShapeError`` unless ``inputs`` is ``(batch, time, *in_shape)``."""
        self._check(inputs, 2, "inputs must have shape (batch, time, ")

    def check_step(self, x: Tensor) -> None:
        """Raise ``ShapeError`` unless ``x`` is ``(batch, *in_shape)``."""
        self._check(x, 1, "step input must have shape (batch, ")

    def _check(self, x: Tensor, lead: int, what: str) -> None:
        if x.dim() != lead + len(self.in_shape) or tuple(x.shape[lead:]) != self.in_shape:
            raise ShapeError(
                f"{type(self).__name__}: {what}{', '.join(map(str, self.in_shape))}), got {tuple(x.shape)}"
            )

    def state_options(
        self, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> dict[str, Any]:
        """``device`` and ``dtype`` for the state tensors: the given ones, else those of the
        module's first floating parameter (CPU and the default dtype without parameters)."""
        reference = next((p for p in self.parameters() if p.is_floating_point()), None)
        if device is None:
            device = reference.device if reference is not None else None
        if dtype is None:
            dtype = reference.dtype if reference is not None else torch.get_default_dtype()
        return {"device": device, "dtype": dtype}
