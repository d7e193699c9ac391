"""MotionFlow's stack of causal residual blocks over time (motionflow.txt eqs. 10-11).

Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion Dynamics",
IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt, section 4.4). The gated activation unit was
introduced by van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", NeurIPS
2016, arXiv:1606.05328.

Each block has three layers: a convolution with kernel ``2`` in time and ``3`` in every spatial
axis (``2 x 3 x 3`` for image latents, as in the paper), a Gated Activation Unit
``tanh(W_a h) * sigmoid(W_b h)`` made of two ``1 x ... x 1`` convolutions, and a second ``2 x 3 x
3`` convolution initialised to zero, so every block starts as the identity; its input is added
to its output. Blocks are repeated with time dilations (default 1, 2, 4). The first two layers
are initialised from a Gaussian. A ``1 x ... x 1`` convolution maps the latent channels in
(eq. 10's ``conv_1``) and another, zero-initialised, maps to the output channels (eq. 11's
``conv_2``).

Time convolutions are *causal*: the input is padded on the left only, so output ``t`` depends on
inputs ``<= t``. Inputs are ``(B, C, T, *spatial)`` with 0, 1 or 2 spatial axes (Conv1d, 2d, 3d).

Example::

    >>> import torch
    >>> net = CausalResidualStack(channels=3, out_channels=6, hidden=8, spatial=2)
    >>> net(torch.randn(2, 3, 5, 4, 4)).shape
    torch.Size([2, 6, 5, 4, 4])
    >>> net.receptive_field
    15
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from eddies.core.init import zero_init_

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class CausalConv(nn.Module):
    """Convolution over ``(T, *spatial)``: kernel ``kernel_t`` dilated in time and causal,
    kernel ``kernel_s`` with same-size padding in space."""

    def __init__(self, cin: int, cout: int, spatial: int, kernel_t: int = 2, kernel_s: int = 3, dilation: int = 1):
        super().__init__()
        self.spatial, self.pad_t = spatial, (kernel_t - 1) * dilation
        self.conv = CONVS[spatial](
            cin, cout, (kernel_t,) + (kernel_s,) * spatial,
            dilation=(dilation,) + (1,) * spatial, padding=(0,) + (kernel_s // 2,) * spatial,
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, [0, 0] * self.spatial + [self.pad_t, 0]))


def _gaussian_init(conv: nn.Module) -> nn.Module:
    weight = conv.conv.weight if isinstance(conv, CausalConv) else conv.weight
    nn.init.normal_(weight, std=weight[0].numel() ** -0.5)
    return conv


def _zero_init(conv: nn.Module) -> nn.Module:
    zero_init_(conv.conv if isinstance(conv, CausalConv) else conv)
    return conv


class GatedResidualBlock(nn.Module):
    """``x + conv_3(tanh(W_a h) * sigmoid(W_b h))`` with ``h = conv_1(x)`` (motionflow.txt eq. 11)."""

    def __init__(self, hidden: int, spatial: int, dilation: int):
        super().__init__()
        self.first = _gaussian_init(CausalConv(hidden, hidden, spatial, dilation=dilation))
        self.gate = _gaussian_init(CONVS[spatial](hidden, 2 * hidden, 1))
        self.last = _zero_init(CausalConv(hidden, hidden, spatial, dilation=dilation))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.gate(self.first(x)).chunk(2, dim=1)
        return x + self.last(a.tanh() * b.sigmoid())


class CausalResidualStack(nn.Module):
    """``conv_2(res(conv_1(x)))`` over ``(B, channels, T, *spatial)``; see the module docstring."""

    def __init__(
        self, channels: int, out_channels: int, hidden: int = 32, spatial: int = 0,
        dilations: tuple[int, ...] = (1, 2, 4),
    ):
        super().__init__()
        self.first = _gaussian_init(CONVS[spatial](channels, hidden, 1))
        self.blocks = nn.Sequential(*(GatedResidualBlock(hidden, spatial, d) for d in dilations))
        self.last = _zero_init(CONVS[spatial](hidden, out_channels, 1))
        self.receptive_field = 1 + 2 * sum(dilations)

    def forward(self, x: Tensor) -> Tensor:
        return self.last(self.blocks(self.first(x)))
