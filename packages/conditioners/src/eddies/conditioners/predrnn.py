"""PredRNN's spatio-temporal LSTM (or a ConvLSTM) stack with MotionRNN's MotionGRU and motion
highway (``predrnn``).

PredRNN: Yunbo Wang, Mingsheng Long, Jianmin Wang, Zhifeng Gao & Philip S. Yu, "PredRNN:
Recurrent Neural Networks for Predictive Learning using Spatiotemporal LSTMs", NeurIPS 2017
(journal version: Wang et al., "PredRNN: A Recurrent Neural Network for Spatiotemporal
Predictive Learning", IEEE TPAMI 2022, arXiv:2103.09504). ConvLSTM: Shi, Chen, Wang, Yeung,
Wong & Woo, "Convolutional LSTM Network", NeurIPS 2015, arXiv:1506.04214. MotionRNN: Wu, Yao,
Wang & Long, CVPR 2021, arXiv:2103.02243 (local copy of the supplement: motionrnn_supplement.txt;
its table 1 puts MotionGRU on ConvLSTM and PredRNN alike).

:class:`SpatioTemporalLSTMCell` (``cell: st_lstm``) is the ST-LSTM of PredRNN (NeurIPS 2017,
eq. 3): besides the temporal memory ``C`` it carries a spatio-temporal memory ``M`` that zigzags
through the stack (layer ``l-1`` to ``l`` within a step, top layer at ``t-1`` to the bottom at
``t``)::

    g = tanh(W_xg * X + W_hg * H),  i = sigma(W_xi * X + W_hi * H),  f = sigma(W_xf * X + W_hf * H + b_f)
    C_t = f * C + i * g
    g' = tanh(W'_xg * X + W_mg * M), i' = sigma(W'_xi * X + W_mi * M), f' = sigma(W'_xf * X + W_mf * M + b_f)
    M_t = f' * M + i' * g'
    o = sigma(W_xo * X + W_ho * H + W_co * C_t + W_mo * M_t)
    H_t = o * tanh(W_1x1 * [C_t, M_t])  (+ (1 - o) * Z with the motion highway)

:class:`ConvLSTMCell` (``cell: conv_lstm``) is Shi et al.'s eq. 3, with peepholes ``W_c o C``
(Hadamard products with per-position weights)::

    i = sigma(W_xi * X + W_hi * H + W_ci o C),  f = sigma(W_xf * X + W_hf * H + W_cf o C + b_f)
    C_t = f o C + i o tanh(W_xc * X + W_hc * H)
    o = sigma(W_xo * X + W_ho * H + W_co o C_t),  H_t = o o tanh(C_t)  (+ (1 - o) o Z)

It has no memory ``M``; the stack's state keeps a zero one so both cells share one layout.

MotionRNN (its section 3.3; motionrnn_supplement.txt eq. 1 for MotionGRU) inserts a
:class:`~eddies.conditioners.motiongru.MotionGRU` between consecutive layers: with ``motion:
true``, for ``l = 1..L-1``::

    X^l_t = MotionGRU(H^l_t)                     # the input of layer l + 1
    H^{l+1}_t = Block(X^l_t, H^{l+1}_{t-1}, ...) + (1 - o) * H^l_t   # the motion highway

The highway adds the unwarped state of the layer below, restoring the content the warp moved
away. ``variant: paper`` (default): the bottom layer has no highway, and every layer's recurrent
state ``H^l_{t-1}`` is its own cell output. ``variant: authors`` is the released code
(core/models/MotionRNN_PredRNN.py; ../shared/protocols/motionrnn_mmnist.md "Where the authors'
code differs"), one switch that (a) overwrites the layer's recurrent state with the MotionGRU
output (``H^l_t <- X^l_t``, so layer ``l`` at ``t+1`` reads the warped state), (b) gives the
bottom layer a highway too, ``Z = W_v * X_t`` (a bias-free 1x1 convolution of the input frame),
and (c) builds each MotionGRU with ``variant: authors`` (the carried offsets ``F' + D'``, the
gate on the current state, ``filter_size`` kernels for ``Enc`` and the gate, zero-initialised
motion weights: see :mod:`eddies.conditioners.motiongru`). It only changes the MotionRNN parts,
so it needs ``motion: true``. The code's random initial states (redrawn on every call) are not
offered: the states start at zero.

:class:`PredRNN` (``predrnn``) stacks ``num_layers`` cells of ``hidden`` channels and is a
:class:`~eddies.core.SequenceConditioner`: per-step input ``in_shape=(C, H, W)``, output the top
hidden state ``(hidden, H, W)``, teacher-forced ``forward`` over ``(B, T, C, H, W)``, and
``initial_state`` / ``step`` for rollouts. The ``video_predictor`` model kind adds patching and
a 1x1 convolution from the top state to the frame around it::

    >>> import torch
    >>> rnn = PredRNN(hidden=8, num_layers=2, motion=True, in_shape=(1, 8, 8))
    >>> rnn(torch.randn(2, 4, 1, 8, 8)).shape
    torch.Size([2, 4, 8, 8, 8])
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from eddies.conditioners.motiongru import MotionGRU
from eddies.core import ComponentConfig, SequenceConditioner, ShapeError, register


def _conv(a: int, b: int, k: int, size: tuple[int, int], layer_norm: bool) -> nn.Module:
    """A 'same' ``k x k`` convolution, with a LayerNorm over ``(b, H, W)`` after it when asked
    (PredRNN's ``layer_norm``; the convolution then has no bias)."""
    layer = nn.Conv2d(a, b, k, padding=k // 2, bias=not layer_norm)
    return nn.Sequential(layer, nn.LayerNorm([b, *size])) if layer_norm else layer


class SpatioTemporalLSTMCell(nn.Module):
    """One ST-LSTM cell (PredRNN eq. 3) with an optional motion highway; see the module docstring.

    >>> import torch
    >>> cell = SpatioTemporalLSTMCell(3, 4, (5, 5))
    >>> zeros = torch.zeros(2, 4, 5, 5)
    >>> h, c, m = cell(torch.randn(2, 3, 5, 5), zeros, zeros, zeros)
    >>> h.shape
    torch.Size([2, 4, 5, 5])
    """

    def __init__(
        self, in_channels: int, hidden: int, size: tuple[int, int], filter_size: int = 5,
        layer_norm: bool = False, forget_bias: float = 1.0,
    ):
        super().__init__()
        self.forget_bias = forget_bias
        self.conv_x = _conv(in_channels, 7 * hidden, filter_size, size, layer_norm)
        self.conv_h = _conv(hidden, 4 * hidden, filter_size, size, layer_norm)
        self.conv_m = _conv(hidden, 3 * hidden, filter_size, size, layer_norm)
        self.conv_o = _conv(2 * hidden, hidden, filter_size, size, layer_norm)
        self.conv_last = nn.Conv2d(2 * hidden, hidden, 1, bias=False)

    def forward(
        self, x: Tensor, h: Tensor, c: Tensor, m: Tensor, highway: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(H_t, C_t, M_t)`` from input ``x``, ``H_{t-1}``, ``C_{t-1}`` and the incoming ``M``."""
        i_x, f_x, g_x, i_xm, f_xm, g_xm, o_x = self.conv_x(x).chunk(7, 1)
        i_h, f_h, g_h, o_h = self.conv_h(h).chunk(4, 1)
        i_m, f_m, g_m = self.conv_m(m).chunk(3, 1)
        c_new = torch.sigmoid(f_x + f_h + self.forget_bias) * c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        m_new = (torch.sigmoid(f_xm + f_m + self.forget_bias) * m
                 + torch.sigmoid(i_xm + i_m) * torch.tanh(g_xm + g_m))
        memory = torch.cat([c_new, m_new], 1)
        o = torch.sigmoid(o_x + o_h + self.conv_o(memory))
        h_new = o * torch.tanh(self.conv_last(memory))
        if highway is not None:
            h_new = h_new + (1 - o) * highway
        return h_new, c_new, m_new


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell (Shi et al. 2015, eq. 3, with peepholes) and the same call as
    :class:`SpatioTemporalLSTMCell`: the memory ``m`` passes through unchanged.

    >>> import torch
    >>> cell = ConvLSTMCell(3, 4, (5, 5))
    >>> zeros = torch.zeros(2, 4, 5, 5)
    >>> h, c, m = cell(torch.randn(2, 3, 5, 5), zeros, zeros, zeros)
    >>> h.shape, m is zeros
    (torch.Size([2, 4, 5, 5]), True)
    """

    def __init__(
        self, in_channels: int, hidden: int, size: tuple[int, int], filter_size: int = 5,
        layer_norm: bool = False, forget_bias: float = 1.0,
    ):
        super().__init__()
        self.forget_bias = forget_bias
        self.conv_x = _conv(in_channels, 4 * hidden, filter_size, size, layer_norm)
        self.conv_h = _conv(hidden, 4 * hidden, filter_size, size, layer_norm)
        self.peephole = nn.Parameter(torch.zeros(3, hidden, *size))  # W_ci, W_cf, W_co

    def forward(
        self, x: Tensor, h: Tensor, c: Tensor, m: Tensor, highway: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(H_t, C_t, m)`` from input ``x``, ``H_{t-1}``, ``C_{t-1}`` (``m`` is returned as is)."""
        i, f, g, o = (a + b for a, b in zip(self.conv_x(x).chunk(4, 1), self.conv_h(h).chunk(4, 1), strict=True))
        w_ci, w_cf, w_co = self.peephole
        c_new = torch.sigmoid(f + w_cf * c + self.forget_bias) * c + torch.sigmoid(i + w_ci * c) * torch.tanh(g)
        o = torch.sigmoid(o + w_co * c_new)
        h_new = o * torch.tanh(c_new)
        if highway is not None:
            h_new = h_new + (1 - o) * highway
        return h_new, c_new, m


Cell = Literal["st_lstm", "conv_lstm"]
Variant = Literal["paper", "authors"]
CELLS = {"st_lstm": SpatioTemporalLSTMCell, "conv_lstm": ConvLSTMCell}


class PredRNNConfig(ComponentConfig):
    """Config of :class:`PredRNN` (defaults: PredRNN's 4 layers of 64 channels, 5x5 filters)."""

    hidden: int = Field(default=64, ge=1)
    num_layers: int = Field(default=4, ge=1)
    filter_size: int = Field(default=5, ge=1)
    layer_norm: bool = False
    forget_bias: float = 1.0
    cell: Cell = Field(default="st_lstm", description="st_lstm: PredRNN's ST-LSTM; conv_lstm: ConvLSTM")
    motion: bool = Field(default=False, description="MotionRNN: MotionGRU between layers + highway")
    neighbourhood: int = Field(default=3, ge=1, description="MotionGRU's k")
    alpha: float = Field(default=0.5, gt=0.0, le=1.0, description="MotionGRU's trend step")
    variant: Variant = Field(
        default="paper", description="paper: the supplement and MotionRNN's eqs.; authors: the released code "
        "(state overwrite, bottom-layer highway, MotionGRU variant authors); needs motion: true")

    @model_validator(mode="after")
    def _checks(self) -> PredRNNConfig:
        if self.filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd (a 'same' convolution), got {self.filter_size}")
        if self.variant == "authors" and not self.motion:
            raise ValueError("variant 'authors' changes only MotionRNN's parts: it needs motion: true")
        return self


@register(
    "conditioners", "predrnn", version=1, config=PredRNNConfig,
    summary="PredRNN ST-LSTM (or ConvLSTM) stack; with motion=true, MotionRNN's MotionGRU and motion highway.",
    examples=[
        {"config": {"hidden": 4, "num_layers": 2, "filter_size": 3}, "in_shape": (1, 4, 4),
         "out_shape": None, "batch": (2, 3)},
        {"config": {"hidden": 4, "num_layers": 3, "filter_size": 3, "motion": True, "layer_norm": True},
         "in_shape": (2, 4, 6), "out_shape": (4, 4, 6), "batch": (1, 2)},
        {"config": {"hidden": 4, "num_layers": 2, "filter_size": 3, "motion": True, "variant": "authors"},
         "in_shape": (1, 4, 4), "out_shape": None, "batch": (2, 3)},
        {"config": {"hidden": 4, "num_layers": 2, "filter_size": 3, "cell": "conv_lstm", "motion": True},
         "in_shape": (1, 4, 4), "out_shape": None, "batch": (2, 3)},
    ],
)
class PredRNN(SequenceConditioner):
    """Stack of :class:`SpatioTemporalLSTMCell` or :class:`ConvLSTMCell` (optionally MotionRNN);
    see the module docstring.

    State: a dict with lists ``h``, ``c`` (one ``(B, hidden, H, W)`` per layer), the zigzag
    memory ``m`` (zero and unused by ``conv_lstm``) and ``motion`` (one MotionGRU state per
    layer but the top; empty without ``motion``).
    """

    def __init__(
        self,
        hidden: int = 64,
        num_layers: int = 4,
        filter_size: int = 5,
        layer_norm: bool = False,
        forget_bias: float = 1.0,
        cell: Cell = "st_lstm",
        motion: bool = False,
        neighbourhood: int = 3,
        alpha: float = 0.5,
        variant: Variant = "paper",
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"PredRNN: in_shape must be (C, H, W) per step, got {self.in_shape}")
        if variant == "authors" and not motion:
            raise ValueError("PredRNN: variant 'authors' changes only MotionRNN's parts: it needs motion=True")
        c, h, w = self.in_shape
        self._out = (hidden, h, w)
        if out_shape is not None and self.requested_out_shape != self._out:
            raise ShapeError(
                f"PredRNN: its output is (hidden, H, W) = {self._out}; out_shape {self.requested_out_shape} "
                "was requested"
            )
        self.num_layers, self.cell_type, self.variant = num_layers, cell, variant
        self.cells = nn.ModuleList(
            CELLS[cell](c if i == 0 else hidden, hidden, (h, w), filter_size, layer_norm, forget_bias)
            for i in range(num_layers)
        )
        self.motion_grus = nn.ModuleList(
            MotionGRU(neighbourhood, alpha=alpha, variant=variant, filter_size=filter_size, in_shape=self._out)
            for _ in range(num_layers - 1)
        ) if motion else nn.ModuleList()
        # authors: the bottom layer's highway W_v * X_t (conv_first_v in their code)
        self.input_highway = nn.Conv2d(c, hidden, 1, bias=False) if variant == "authors" else None

    def output_shape(self) -> tuple[int, ...]:
        return self._out

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> dict[str, Any]:
        """Zero hidden states and memories (and MotionGRU states) for ``batch`` sequences."""
        options = self.state_options(device, dtype)

        def zeros() -> Tensor:
            return torch.zeros(batch, *self._out, **options)

        return {
            "h": [zeros() for _ in range(self.num_layers)],
            "c": [zeros() for _ in range(self.num_layers)],
            "m": zeros(),
            "motion": [g.initial_state(batch, **options) for g in self.motion_grus],
        }

    def step(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One step: frame ``(B, C, H, W)`` and state in, top hidden state and new state out."""
        self.check_step(x)
        hs, cs, m, motion = [], [], state["m"], []
        inputs = x
        highway = None if self.input_highway is None else self.input_highway(x)
        for i, cell in enumerate(self.cells):
            h, c, m = cell(inputs, state["h"][i], state["c"][i], m, highway)
            inputs = h
            if i < len(self.motion_grus):  # with motion: a MotionGRU above every layer but the top
                inputs, gru_state = self.motion_grus[i].step(h, state["motion"][i])
                motion.append(gru_state)
                highway = h  # the unwarped state of this layer
            hs.append(inputs if self.variant == "authors" else h)  # authors: the MotionGRU output overwrites H^l
            cs.append(c)
        return hs[-1], {"h": hs, "c": cs, "m": m, "motion": motion}
