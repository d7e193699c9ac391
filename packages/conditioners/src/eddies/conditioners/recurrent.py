"""Recurrent sequence conditioners (``lstm``, ``gru``): teacher forcing and a step API.

FRMDN (frmdn.txt, eqs. 10-13) computes the mixture's parameters at step t from an RNN state
``h_t = RNN(h_{t-1}, [x_t ; y_{t-1}])``; the model builds the per-step input ``[x_t ; y_{t-1}]``
and this module runs the recurrence. Training uses :meth:`forward` on the whole sequence
(teacher forcing, causal: output t sees inputs 1..t only); sampling calls :meth:`step` once per
generated step, carrying the state returned by the previous call::

    >>> import torch
    >>> rnn = LSTMConditioner(hidden_size=32, in_shape=(5,))
    >>> rnn(torch.randn(2, 7, 5)).shape                     # teacher-forced, (B, T, H)
    torch.Size([2, 7, 32])
    >>> state = rnn.initial_state(2, torch.device("cpu"), torch.float32)
    >>> out, state = rnn.step(torch.randn(2, 5), state)      # one step, (B, H)
    >>> out.shape
    torch.Size([2, 32])
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.shapes import batch_axes


def unroll(net: Conditioner, inputs: Tensor, state: Any = None) -> Tensor:
    """Run ``net.step`` over the time axis of ``inputs`` ``(B, T, ...)``, from ``state`` or
    ``net.initial_state``; the outputs stacked to ``(B, T, ...)``. The teacher-forced ``forward``
    of the step-by-step sequence conditioners (``motiongru``, ``predrnn``)."""
    if state is None:
        state = net.initial_state(inputs.shape[0], inputs.device, inputs.dtype)
    outputs = []
    for x in inputs.unbind(1):
        out, state = net.step(x, state)
        outputs.append(out)
    return torch.stack(outputs, 1)


class RecurrentConfig(ComponentConfig):
    """Config of the ``lstm`` and ``gru`` conditioners."""

    hidden_size: int = Field(default=32, ge=1, description="H, the output width (FRMDN: 32)")
    num_layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="between stacked layers")

    @model_validator(mode="after")
    def _dropout_needs_layers(self) -> RecurrentConfig:
        if self.dropout > 0 and self.num_layers < 2:
            raise ValueError("dropout acts between stacked layers: it needs num_layers >= 2")
        return self


class _Recurrent(Conditioner):
    """Shared body of :class:`LSTMConditioner` and :class:`GRUConditioner` (``rnn_cls``)."""

    rnn_cls: type[nn.RNNBase]

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        name = type(self).__name__
        if len(self.in_shape) != 1:
            raise ShapeError(f"{name}: in_shape must be (features,) per step, got {self.in_shape}")
        if out_shape is not None and self.requested_out_shape != (hidden_size,):
            raise ShapeError(
                f"{name}: its output is (hidden_size,) = ({hidden_size},), but out_shape="
                f"{self.requested_out_shape} was requested; set hidden_size or pass out_shape=None"
            )
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.rnn = self.rnn_cls(
            self.in_shape[0], hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True
        )

    def output_shape(self) -> tuple[int, ...]:
        return (self.hidden_size,)

    def forward(self, inputs: Tensor, state: Any = None) -> Tensor:
        """Teacher-forced outputs ``(B, T, H)`` for inputs ``(B, T, F)``, from ``state`` or zeros."""
        return self.scan(inputs, state)[0]

    def scan(self, inputs: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Outputs ``(B, T, H)`` and the state after the last step (to continue with :meth:`step`)."""
        if inputs.dim() != 3:
            raise ShapeError(
                f"{type(self).__name__}: inputs must have shape (batch, time, {self.in_shape[0]}), "
                f"got {tuple(inputs.shape)}"
            )
        batch_axes(self, inputs, self.in_shape, "inputs")
        return self.rnn(inputs, state)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: input ``(B, F)`` and state in, output ``(B, H)`` and new state out."""
        if x.dim() != 2:
            raise ShapeError(
                f"{type(self).__name__}: step input must have shape (batch, {self.in_shape[0]}), "
                f"got {tuple(x.shape)}"
            )
        out, state = self.scan(x.unsqueeze(1), state)
        return out.squeeze(1), state

    def _zeros(self, batch: int, device: torch.device | None, dtype: torch.dtype | None) -> Tensor:
        return torch.zeros(self.num_layers, batch, self.hidden_size, device=device, dtype=dtype)


_EXAMPLES = [
    {"config": {"hidden_size": 6}, "in_shape": (3,), "out_shape": None, "batch": (2, 4)},
    {"config": {"hidden_size": 5, "num_layers": 2, "dropout": 0.2}, "in_shape": (2,),
     "out_shape": (5,), "batch": (3, 2)},
]


@register(
    "conditioners", "lstm", version=1, config=RecurrentConfig,
    summary="LSTM over a sequence: teacher-forced forward and a step API (FRMDN's RNN).",
    examples=_EXAMPLES,
)
class LSTMConditioner(_Recurrent):
    """Stacked LSTM (Hochreiter & Schmidhuber 1997) as in FRMDN eqs. 10-13 (frmdn.txt).

    State is the pair ``(h, c)``, each ``(num_layers, B, H)``. See the module docstring for an
    example.
    """

    rnn_cls = nn.LSTM

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)`` for ``batch`` sequences."""
        return self._zeros(batch, device, dtype), self._zeros(batch, device, dtype)


@register(
    "conditioners", "gru", version=1, config=RecurrentConfig,
    summary="GRU over a sequence: teacher-forced forward and a step API.",
    examples=_EXAMPLES,
)
class GRUConditioner(_Recurrent):
    """Stacked GRU (Cho et al. 2014); same contract as :class:`LSTMConditioner`.

    State is ``h`` of shape ``(num_layers, B, H)``.

    Example::

        >>> import torch
        >>> rnn = GRUConditioner(hidden_size=4, in_shape=(3,))
        >>> out, h = rnn.step(torch.randn(2, 3), rnn.initial_state(2))
        >>> out.shape, h.shape
        (torch.Size([2, 4]), torch.Size([1, 2, 4]))
    """

    rnn_cls = nn.GRU

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """Zero ``h`` for ``batch`` sequences."""
        return self._zeros(batch, device, dtype)
