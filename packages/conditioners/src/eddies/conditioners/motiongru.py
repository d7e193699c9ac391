"""MotionGRU (``motiongru``; MotionRNN, motionrnn_supplement.txt eqs. 1-3).

MotionRNN: Haixu Wu, Zhiyu Yao, Jianmin Wang & Mingsheng Long, "MotionRNN: A Flexible Model for
Video Prediction with Spacetime-Varying Motions", CVPR 2021, arXiv:2103.02243 (local copy of the
supplement: motionrnn_supplement.txt; the authors' code: github.com/thuml/MotionRNN).

A recurrent unit that moves a predictive model's hidden state ``H_t`` (``C x H x W``; the
supplement's ``H'_t``, "the hidden state of original predictive models") along learned motion.
With ``Enc`` a stride-2 convolution to ``C/4`` channels and ``k`` the neighbourhood size, one
step of the supplement's eq. 1 is::

    F'_t = Transient(F'_{t-1}, Enc(H_t))           # a ConvGRU over the offsets (2k^2 channels)
    D'_t = Trend(F'_{t-1}, D'_{t-1}) = D'_{t-1} + alpha (F'_{t-1} - D'_{t-1})   # momentum, alpha = 0.5
    F_t  = F'_t + D'_t                             # the motion filter
    m_t  = Broadcast(sigmoid(W_hm * Enc(H_t)))     # one mask per neighbour, shared by the C/4 channels
    H'_t = m_t * Warp(Enc(H_t), F_t)               # (C/4, k^2, H/2, W/2)
    g_t  = sigmoid(W_1x1 * [Dec(H'_t), H_t])
    X_t  = g_t * H_{t-1} + (1 - g_t) * Dec(H'_t)

``Warp`` (eqs. 2-3) samples, for every position ``(m, n)`` and neighbour ``i`` (offset
``p_i = (i // k - k // 2, i % k - k // 2)``), the map at ``(m + p_ix - F[i], n + p_iy - F[k^2 + i])``
by bilinear interpolation in the unit square, reading zeros outside the map
(:func:`neighbourhood_warp`). ``Dec`` squeezes ``H'_t`` to ``C/4`` channels by a 1x1
convolution and a stride-2 transposed convolution (kernel 4) brings it back to ``C x H x W``
(supplement, "Gated Output"). ``Transient`` is a ConvGRU with 3x3 gates; ``Enc`` is 3x3;
``W_hm`` is 3x3; ``W_1x1`` is 1x1. The state ``(F'_t, D'_t, H_t)`` starts at zero.

Decisions written down (``variant: paper``, the default):

- The warp uses the motion filter ``F_t = F'_t + D'_t``. Eq. 1's fifth line writes
  ``Warp(Enc(H'_t), F'_t)``; read literally, ``D'_t`` and ``F_t`` would reach no output (``F'_t``
  depends only on ``F'_{t-1}`` and ``Enc(H_t)``), although the supplement calls ``F_t`` "the
  learned motion-based state transition" and its eq. 2 warps with ``F``, and the ablation of its
  section 2 shows the trend matters. We read ``F'_t`` there as ``F_t^l``.
- ``H_{t-1}`` in the output gate is the supplement's ``H'_{t-1}``: the input hidden state of the
  previous step, carried in the state (zero at the first step).

``variant: authors`` is the released code (core/layers/MotionGRU.py and
core/models/MotionRNN_PredRNN.py; ../shared/protocols/motionrnn_mmnist.md, "Where the
authors' code differs"), one switch for four differences:

1. the state carried to the next step is ``F_t = F'_t + D'_t`` (not ``F'_t``), so
   ``Transient`` and ``Trend`` both read ``F_{t-1}`` and the trend accumulates;
2. the gate mixes the current input: ``X_t = g_t * H_t + (1 - g_t) * Dec(H'_t)``;
3. ``Enc`` and ``W_1x1`` use ``filter_size x filter_size`` kernels (5 in the authors' runs);
4. the weights of the transient ConvGRU and of ``W_hm`` start at zero (their init).

Not offered: the code's gradient scaling (a backward hook whose result is never used, so a
no-op) and its random initial states (redrawn on every call, which makes test predictions
random); its warp samples at ``p + F`` where eq. 2 has ``p - F`` (a sign the offsets learn
either way) and clamps to the border of a one-pixel zero padding.

Example::

    >>> import torch
    >>> gru = MotionGRU(in_shape=(8, 6, 6))
    >>> gru(torch.randn(2, 5, 8, 6, 6)).shape          # a sequence of hidden states
    torch.Size([2, 5, 8, 6, 6])
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor, nn

from eddies.core import ComponentConfig, SequenceConditioner, ShapeError, register


def neighbourhood_warp(h: Tensor, offsets: Tensor, k: int) -> Tensor:
    """Warp of motionrnn_supplement.txt eqs. 2-3: ``(B, C, H, W)`` and offsets ``(B, 2k^2, H, W)``
    (vertical ones first) to ``(B, C, k^2, H, W)``; bilinear, zeros outside, differentiable in
    both arguments. Zero offsets give the plain ``k x k`` neighbourhood (``F.unfold``).

    >>> import torch
    >>> h = torch.arange(9.).view(1, 1, 3, 3)
    >>> neighbourhood_warp(h, torch.zeros(1, 2, 3, 3), 1)[0, 0, 0].tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    """
    b, c, height, width = h.shape
    n = k * k
    if offsets.shape != (b, 2 * n, height, width):
        raise ShapeError(
            f"neighbourhood_warp: offsets must have shape {(b, 2 * n, height, width)}, got {tuple(offsets.shape)}"
        )
    taps = torch.arange(n, device=h.device)
    p_x = (taps // k - k // 2).to(h.dtype).view(1, n, 1, 1)
    p_y = (taps % k - k // 2).to(h.dtype).view(1, n, 1, 1)
    grid_m = torch.arange(height, device=h.device, dtype=h.dtype).view(1, 1, height, 1)
    grid_n = torch.arange(width, device=h.device, dtype=h.dtype).view(1, 1, 1, width)
    rows = grid_m + p_x - offsets[:, :n]  # (B, k^2, H, W)
    cols = grid_n + p_y - offsets[:, n:]
    top, left = rows.detach().floor(), cols.detach().floor()
    frac_r, frac_c = rows - top, cols - left
    flat = h.reshape(b, c, height * width)
    out = h.new_zeros(b, c, n * height * width)
    for dr, weight_r in ((0, 1 - frac_r), (1, frac_r)):
        for dc, weight_c in ((0, 1 - frac_c), (1, frac_c)):
            r, q = (top + dr).long(), (left + dc).long()
            inside = (r >= 0) & (r < height) & (q >= 0) & (q < width)
            index = (r.clamp(0, height - 1) * width + q.clamp(0, width - 1)).view(b, 1, -1)
            value = flat.gather(2, index.expand(b, c, -1))
            out = out + value * (weight_r * weight_c * inside).view(b, 1, -1)
    return out.view(b, c, n, height, width)


Variant = Literal["paper", "authors"]


class MotionGRUConfig(ComponentConfig):
    """Config of :class:`MotionGRU`."""

    neighbourhood: int = Field(default=3, ge=1, description="k, the warp's k x k neighbourhood")
    enc_channels: int | None = Field(default=None, ge=1, description="Enc's channels; default C // 4")
    alpha: float = Field(default=0.5, gt=0.0, le=1.0, description="the trend's momentum step")
    variant: Variant = Field(
        default="paper", description="paper: supplement eq. 1; authors: the released code (module docstring)")
    filter_size: int = Field(default=5, ge=1, description="kernel of Enc and W_1x1 with variant: authors")

    @model_validator(mode="after")
    def _odd_filter(self) -> MotionGRUConfig:
        if self.filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd (a 'same' convolution), got {self.filter_size}")
        return self


@register(
    "conditioners", "motiongru", version=1, config=MotionGRUConfig,
    summary="MotionGRU: transient and trend offsets warp a hidden state (MotionRNN).",
    examples=[
        {"config": {}, "in_shape": (4, 4, 6), "out_shape": None, "batch": (2, 3)},
        {"config": {"neighbourhood": 1, "enc_channels": 2}, "in_shape": (3, 2, 2),
         "out_shape": (3, 2, 2), "batch": (1, 2)},
        {"config": {"variant": "authors", "filter_size": 3}, "in_shape": (4, 4, 4), "out_shape": None,
         "batch": (2, 3)},
    ],
)
class MotionGRU(SequenceConditioner):
    """MotionGRU over a sequence of hidden states ``(B, T, C, H, W)``; see the module docstring.

    A :class:`~eddies.core.SequenceConditioner`: ``forward`` (the base class's teacher forcing)
    runs the recurrence over ``T`` steps, ``initial_state`` and ``step`` run it one step at a
    time. ``H`` and ``W`` must be even. The state is ``(F, D, H_prev)``: the carried offsets
    (``F'`` for ``paper``, ``F' + D'`` for ``authors``), the trend ``D'`` and the previous input.
    """

    def __init__(
        self,
        neighbourhood: int = 3,
        enc_channels: int | None = None,
        alpha: float = 0.5,
        variant: Variant = "paper",
        filter_size: int = 5,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3 or self.in_shape[1] % 2 or self.in_shape[2] % 2:
            raise ShapeError(f"MotionGRU: in_shape must be (C, H, W) with H, W even, got {self.in_shape}")
        if out_shape is not None and self.requested_out_shape != self.in_shape:
            raise ShapeError(f"MotionGRU keeps the shape {self.in_shape}; out_shape {self.requested_out_shape} given")
        if variant not in ("paper", "authors"):
            raise ValueError(f"MotionGRU: variant must be 'paper' or 'authors', got {variant!r}")
        c = self.in_shape[0]
        e = enc_channels or max(c // 4, 1)
        k, self.k, self.alpha, self.variant = neighbourhood, neighbourhood, alpha, variant
        self.motion_channels = 2 * k * k
        enc_k, gate_k = (filter_size, filter_size) if variant == "authors" else (3, 1)
        self.enc = nn.Conv2d(c, e, enc_k, stride=2, padding=enc_k // 2)
        self.gates = nn.Conv2d(e + self.motion_channels, 2 * self.motion_channels, 3, padding=1)
        self.candidate = nn.Conv2d(e + self.motion_channels, self.motion_channels, 3, padding=1)
        self.mask_conv = nn.Conv2d(e, k * k, 3, padding=1)  # W_hm
        self.squeeze = nn.Conv2d(e * k * k, e, 1)
        self.deconv = nn.ConvTranspose2d(e, c, 4, stride=2, padding=1)
        self.gate = nn.Conv2d(2 * c, c, gate_k, padding=gate_k // 2)  # W_1x1
        if variant == "authors":
            for conv in (self.gates, self.candidate, self.mask_conv):
                nn.init.zeros_(conv.weight)

    def output_shape(self) -> tuple[int, ...]:
        return self.in_shape

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Zero offsets and trend, each ``(B, 2k^2, H/2, W/2)``, and a zero previous input ``(B, C, H, W)``."""
        c, h, w = self.in_shape
        options = self.state_options(device, dtype)
        zeros = torch.zeros(batch, self.motion_channels, h // 2, w // 2, **options)
        return zeros, zeros.clone(), torch.zeros(batch, c, h, w, **options)

    def step(self, h: Tensor, state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """One step of eq. 1: hidden state ``H_t`` ``(B, C, H, W)`` and the state in; ``X_t`` and the new state out."""
        self.check_step(h)
        carried, trend, previous = state  # F'_{t-1} (authors: F_{t-1}), D'_{t-1}, H_{t-1}
        e = self.enc(h)
        update, reset = torch.sigmoid(self.gates(torch.cat([e, carried], 1))).chunk(2, 1)
        candidate = torch.tanh(self.candidate(torch.cat([e, reset * carried], 1)))
        transient = update * candidate + (1 - update) * carried  # F'_t = Transient(F'_{t-1}, Enc(H_t))
        new_trend = trend + self.alpha * (carried - trend)  # D'_t = D'_{t-1} + alpha (F'_{t-1} - D'_{t-1})
        motion = transient + new_trend  # F_t = F'_t + D'_t
        mask = torch.sigmoid(self.mask_conv(e)).unsqueeze(1)  # m_t, broadcast over the C/4 channels
        warped = mask * neighbourhood_warp(e, motion, self.k)  # H'_t
        decoded = self.deconv(self.squeeze(rearrange(warped, "b c n h w -> b (c n) h w")))  # Dec(H'_t)
        g = torch.sigmoid(self.gate(torch.cat([decoded, h], 1)))
        if self.variant == "authors":
            return g * h + (1 - g) * decoded, (motion, new_trend, h)
        return g * previous + (1 - g) * decoded, (transient, new_trend, h)
