"""Recurrent sequence conditioners (``lstm``, ``gru``): teacher forcing and a step API.

FRMDN (Seyedeh Fatemeh Razavi, Reshad Hosseini & Tina Behzad, "FRMDN: Flow-based Recurrent
Mixture Density Network", 2020, arXiv:2008.02144; local copy frmdn.txt, eqs. 10-13) computes
the mixture's parameters at step t from an RNN state ``h_t = RNN(h_{t-1}, [x_t ; y_{t-1}])``;
the model builds the per-step input ``[x_t ; y_{t-1}]`` and this module runs the recurrence.
Both conditioners are sequence conditioners (:class:`eddies.core.SequenceConditioner`).
Training uses :meth:`forward` on the whole sequence (teacher forcing, causal: output t sees
inputs 1..t only); sampling calls :meth:`step` once per generated step, carrying the state
returned by the previous call::

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

from eddies.core import ComponentConfig, SequenceConditioner, ShapeError, register


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


class _Recurrent(SequenceConditioner):
    """Shared body of :class:`LSTMConditioner` and :class:`GRUConditioner` (``rnn_cls``).

    ``scan`` runs the fused ``torch.nn.LSTM``/``GRU`` over the whole sequence (one call, not a
    Python loop over steps) and ``step`` is ``scan`` over a sequence of length one, so the two
    agree by construction.
    """

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

    def scan(self, inputs: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Outputs ``(B, T, H)`` for inputs ``(B, T, F)`` and the state after the last step (to
        continue with :meth:`step`), from ``state`` or zeros."""
        self.check_sequence(inputs)
        return self.rnn(inputs, state)

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: input ``(B, F)`` and state in, output ``(B, H)`` and new state out."""
        self.check_step(x)
        out, state = self.scan(x.unsqueeze(1), state)
        return out.squeeze(1), state

    def _zeros(self, batch: int, device: torch.device | None, dtype: torch.dtype | None) -> Tensor:
        return torch.zeros(self.num_layers, batch, self.hidden_size, **self.state_options(device, dtype))


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
    """Stacked LSTM (Hochreiter & Schmidhuber, Neural Computation 1997) as in FRMDN eqs. 10-13
    (Razavi, Hosseini & Behzad 2020, arXiv:2008.02144; frmdn.txt).

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
    """Stacked GRU (Cho et al., EMNLP 2014, arXiv:1406.1078); same contract as :class:`LSTMConditioner`.

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
