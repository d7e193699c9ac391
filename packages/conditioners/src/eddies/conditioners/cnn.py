"""Plain convolution stack (``cnn``) at constant resolution; its defaults are Glow's coupling net.

Glow's affine coupling (Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
Convolutions", NeurIPS 2018, arXiv:1807.03039, table 1 and section 3.3; restated in c-Glow, Lu &
Huang, AAAI 2020, arXiv:1905.13288, cglow.txt section 3,
the ``NN()`` of the affine coupling equations) computes its scale and shift with
``conv3x3(512) -> ActNorm -> ReLU -> conv1x1(512) -> ActNorm -> ReLU -> ZeroConv3x3(out)``,
where the last convolution starts at zero and its output is multiplied by ``exp(3 * logs)`` with
a learned per-channel ``logs`` that also starts at zero. Those are this component's defaults::

    >>> import torch
    >>> net = ConvStack(channels=[16, 16], in_shape=(2, 8, 8), out_shape=(4, 8, 8))
    >>> net(torch.randn(3, 2, 8, 8)).abs().max().item()   # zero-initialised last layer
    0.0

Leading axes beyond one batch axis are flattened and restored, so ``(B, T, C, H, W)`` works.
"""

from __future__ import annotations

import torch
from einops import pack, unpack
from pydantic import Field, model_validator
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.conditioners.normalization import NormName, make_norm
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.init import zero_init_
from eddies.core.shapes import batch_axes


class ConvStackConfig(ComponentConfig):
    """Config of :class:`ConvStack` (defaults: Glow's coupling network)."""

    channels: list[int] = Field(default=[512, 512], description="hidden channels per layer")
    kernel_sizes: list[int] = Field(
        default=[3, 1, 3], description="odd kernel size of every layer, len(channels) + 1 of them"
    )
    activation: ActivationName = "relu"
    norm: NormName = Field(default="actnorm", description="after each hidden convolution")
    zero_init_last: bool = True
    logscale_factor: float = Field(
        default=3.0, ge=0.0,
        description="with zero_init_last: output * exp(factor * logs), logs learned from 0 (Glow); "
        "0 turns the scale off",
    )

    @model_validator(mode="after")
    def _check_kernels(self) -> ConvStackConfig:
        if len(self.kernel_sizes) != len(self.channels) + 1:
            raise ValueError(
                f"kernel_sizes needs len(channels) + 1 = {len(self.channels) + 1} entries, "
                f"got {len(self.kernel_sizes)}"
            )
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and positive, got {self.kernel_sizes}")
        return self


@register(
    "conditioners", "cnn", version=1, config=ConvStackConfig,
    summary="Convolution stack at constant resolution; defaults are Glow's coupling network.",
    examples=[
        {"config": {"channels": [4, 4]}, "in_shape": (2, 5, 4), "out_shape": (6, 5, 4), "batch": (2,)},
        {"config": {"channels": [3], "kernel_sizes": [3, 5], "norm": "batch", "zero_init_last": False},
         "in_shape": (1, 6, 6), "out_shape": None, "batch": (2, 2)},
    ],
)
class ConvStack(Conditioner):
    """``h_l = act(norm(conv_l(h_{l-1})))``, output ``conv_L(h_{L-1})`` (optionally zero-started).

    ``in_shape=(C, H, W)``; ``out_shape=(C', H, W)`` sets the output channels (default ``C``);
    the resolution is kept ("same" padding). See the module docstring for Glow's defaults.
    """

    def __init__(
        self,
        channels: list[int] = (512, 512),
        kernel_sizes: list[int] = (3, 1, 3),
        activation: str = "relu",
        norm: str = "actnorm",
        zero_init_last: bool = True,
        logscale_factor: float = 3.0,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"ConvStack: in_shape must be (C, H, W), got {self.in_shape}")
        c, h, w = self.in_shape
        self._out = self.requested_out_shape or self.in_shape
        if len(self._out) != 3 or self._out[1:] != (h, w):
            raise ShapeError(
                f"ConvStack keeps the resolution: out_shape must be (C', {h}, {w}), got {self._out}"
            )
        widths = [c, *channels]
        layers: list[nn.Module] = []
        for a, b, k in zip(widths[:-1], widths[1:], kernel_sizes[:-1], strict=True):
            layers += [
                nn.Conv2d(a, b, k, padding=k // 2, bias=norm != "actnorm"),
                make_norm(norm, b),
                make_activation(activation),
            ]
        self.hidden = nn.Sequential(*layers)
        k = kernel_sizes[-1]
        self.last = nn.Conv2d(widths[-1], self._out[0], k, padding=k // 2)
        self.logscale_factor = logscale_factor if zero_init_last else 0.0
        if zero_init_last:
            zero_init_(self.last)
        if self.logscale_factor:
            self.logs = nn.Parameter(torch.zeros(1, self._out[0], 1, 1))

    def output_shape(self) -> tuple[int, ...]:
        return self._out

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        flat, packed = pack([x], "* c h w")
        y = self.last(self.hidden(flat))
        if self.logscale_factor:
            y = y * torch.exp(self.logs * self.logscale_factor)
        return unpack(y, packed, "* c h w")[0]
