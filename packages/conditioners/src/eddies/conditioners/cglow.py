"""c-Glow's conditioning networks (cglow.txt, section 4.1 equations, section 5.1, appendix A.1).

c-Glow: You Lu & Bert Huang, "Structured Output Learning with Conditional Generative Flows",
AAAI 2020, arXiv:1905.13288 (local copy: cglow.txt). Glow: Diederik P. Kingma & Prafulla
Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS 2018,
arXiv:1807.03039.

Two networks turn the input image ``x`` into the parameters of a conditional Glow step:

- :class:`CGlowVectorNet` (``cglow_vector``): the CN of the conditional actnorm
  (``s, b = CN(x)``, ``d = 2c``) and of the conditional 1x1 convolution (``W = CN(x)``,
  ``d = c^2``): three convolutions that downscale ``x`` (the first one an "RConv") and three
  fully connected layers ending in ``d`` outputs, reshaped to the requested ``out_shape``.
- :class:`CGlowFeatureNet` (``cglow_features``): the CN of the conditional affine coupling
  (``x_r = CN(x)``, concatenated with ``v_1``): ``3x3 conv -> RConv -> 3x3 conv`` with 16
  channels, which brings ``x`` to the resolution of the flow level it feeds.

The downscaling convolution follows section 5.1: for input size ``H_i`` and output size ``H_o``
its stride is ``H_i / H_o`` and its kernel ``2 * padding + stride`` (padding 1), which gives
exactly ``H_o`` outputs. Every layer but the last is followed by ReLU (appendix A.1).

Initialisation: appendix A.1 says every layer's weights start at zero "as in Glow". With all
weights zero the hidden activations are zero, so no gradient reaches any weight and the network
stays a constant; Glow itself zero-initialises only the last layer. We follow Glow:
``zero_init_last`` (default true) zeroes the last layer, the others keep PyTorch's default.
``cglow_vector``'s ``zero_init_all: true`` reproduces the authors' code instead (every
convolution and linear layer, weights and biases, at zero): an ablation whose conditioning is
dead, since the output is then the last bias alone and stays independent of ``x`` whatever the
training (protocols/cglow_horse.md, "Where the authors' code differs", item 1).
A zero output means ``s = 0, b = 0`` for actnorm and ``W = 0`` for the 1x1 convolution, so the
parent layer decides how the raw output maps to its parameters (for example ``exp`` of a
log-scale, ``I + W``).
"""

from __future__ import annotations

import math

from einops import pack, unpack
from pydantic import Field
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.init import zero_init_
from eddies.core.shapes import batch_axes


def resize_conv(
    in_channels: int, out_channels: int, in_hw: tuple[int, int], out_hw: tuple[int, int],
    padding: int = 1, owner: str = "resize_conv",
) -> nn.Conv2d:
    """c-Glow's "RConv": stride ``H_i/H_o`` and kernel ``2 * padding + stride`` (cglow.txt 5.1).

    >>> import torch
    >>> resize_conv(3, 8, (32, 24), (8, 6))(torch.randn(1, 3, 32, 24)).shape
    torch.Size([1, 8, 8, 6])
    """
    if any(o < 1 or i % o for i, o in zip(in_hw, out_hw, strict=True)):
        raise ShapeError(
            f"{owner}: a downscaling convolution needs the input size {tuple(in_hw)} to be a "
            f"multiple of the output size {tuple(out_hw)}"
        )
    stride = tuple(i // o for i, o in zip(in_hw, out_hw, strict=True))
    kernel = tuple(2 * padding + s for s in stride)
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding)


def _default_size(n: int, at_most: int) -> int:
    """The largest divisor of ``n`` not above ``at_most``."""
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


class CGlowVectorConfig(ComponentConfig):
    """Config of :class:`CGlowVectorNet` (``n_c``, ``n_w`` of cglow.txt section 5.1)."""

    channels: int = Field(default=8, ge=1, description="n_c, channels of the convolutions")
    width: int = Field(default=32, ge=1, description="n_w, width of the hidden FC layers")
    conv_layers: int = Field(default=3, ge=1, description="the first one downscales (RConv)")
    fc_layers: int = Field(default=3, ge=1, description="the last one has prod(out_shape) outputs")
    resolution: list[int] | None = Field(
        default=None, min_length=2, max_length=2,
        description="(H_o, W_o) after downscaling; default: largest divisors of H, W up to 8",
    )
    activation: ActivationName = "relu"
    zero_init_last: bool = True
    zero_init_all: bool = Field(
        default=False, description="zero every layer, as the authors' code does (ablation: the "
        "hidden activations stay 0, so the output never depends on x)",
    )


@register(
    "conditioners", "cglow_vector", version=1, config=CGlowVectorConfig,
    summary="c-Glow's CN for actnorm scale/bias and 1x1 weights: downscaling convs then FC layers.",
    examples=[
        {"config": {"channels": 3, "width": 5}, "in_shape": (2, 8, 6), "out_shape": (6,), "batch": (2,)},
        {"config": {"channels": 2, "width": 4, "resolution": [2, 3], "conv_layers": 1, "fc_layers": 1,
                    "zero_init_last": False},
         "in_shape": (1, 4, 6), "out_shape": (3, 3), "batch": (3,)},
    ],
)
class CGlowVectorNet(Conditioner):
    """``CN(x)`` of c-Glow's conditional actnorm and 1x1 convolution (cglow.txt sec. 4.1, 5.1).

    ``in_shape=(C, H, W)`` is the shape of ``x``; ``out_shape`` (required) is the shape of the
    parameters, for example ``(2 * c,)`` for actnorm's ``s, b`` or ``(c, c)`` for ``W``.

    >>> import torch
    >>> cn = CGlowVectorNet(in_shape=(3, 32, 32), out_shape=(2 * 6,))
    >>> cn(torch.randn(4, 3, 32, 32)).shape
    torch.Size([4, 12])
    """

    def __init__(
        self,
        channels: int = 8,
        width: int = 32,
        conv_layers: int = 3,
        fc_layers: int = 3,
        resolution: list[int] | None = None,
        activation: str = "relu",
        zero_init_last: bool = True,
        zero_init_all: bool = False,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"CGlowVectorNet: in_shape must be (C, H, W), got {self.in_shape}")
        if not self.requested_out_shape:
            raise ShapeError("CGlowVectorNet: out_shape must be given, e.g. (2 * c,) or (c, c)")
        c, h, w = self.in_shape
        size = tuple(resolution) if resolution else (_default_size(h, 8), _default_size(w, 8))
        convs: list[nn.Module] = [resize_conv(c, channels, (h, w), size, owner="CGlowVectorNet")]
        for _ in range(conv_layers - 1):
            convs += [make_activation(activation), nn.Conv2d(channels, channels, 3, padding=1)]
        widths = [channels * size[0] * size[1]] + [width] * (fc_layers - 1)
        fcs: list[nn.Module] = [make_activation(activation), nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            fcs += [nn.Linear(a, b), make_activation(activation)]
        self.last = nn.Linear(widths[-1], math.prod(self.requested_out_shape))
        self.body = nn.Sequential(*convs, *fcs)
        if zero_init_last:
            zero_init_(self.last)
        if zero_init_all:  # the authors' dead conditioning (module docstring)
            for layer in self.modules():
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    zero_init_(layer)

    def output_shape(self) -> tuple[int, ...]:
        return self.requested_out_shape

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        y = self.last(self.body(x.reshape(-1, *self.in_shape)))
        return y.reshape(*x.shape[:-3], *self.requested_out_shape)


class CGlowFeatureConfig(ComponentConfig):
    """Config of :class:`CGlowFeatureNet`."""

    channels: int = Field(default=16, ge=1, description="hidden channels (c-Glow fixes 16)")
    activation: ActivationName = "relu"
    zero_init_last: bool = False


@register(
    "conditioners", "cglow_features", version=1, config=CGlowFeatureConfig,
    summary="c-Glow's coupling CN: 3x3 conv, downscaling conv, 3x3 conv to a flow level's size.",
    examples=[
        {"config": {"channels": 3}, "in_shape": (2, 8, 8), "out_shape": (4, 2, 4), "batch": (2,)},
        {"config": {"channels": 2}, "in_shape": (1, 4, 6), "out_shape": None, "batch": (1, 2)},
    ],
)
class CGlowFeatureNet(Conditioner):
    """``x_r = CN(x)`` of c-Glow's conditional affine coupling (cglow.txt sec. 4.1, 5.1).

    ``in_shape=(C, H, W)``; ``out_shape=(C', H', W')`` is the feature shape at the flow level
    (``H/H'`` and ``W/W'`` integers); without it the output is ``(channels, H, W)``.

    >>> import torch
    >>> cn = CGlowFeatureNet(in_shape=(3, 32, 32), out_shape=(16, 8, 8))
    >>> cn(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 16, 8, 8])
    """

    def __init__(
        self,
        channels: int = 16,
        activation: str = "relu",
        zero_init_last: bool = False,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"CGlowFeatureNet: in_shape must be (C, H, W), got {self.in_shape}")
        c, h, w = self.in_shape
        self._out = self.requested_out_shape or (channels, h, w)
        if len(self._out) != 3:
            raise ShapeError(f"CGlowFeatureNet: out_shape must be (C', H', W'), got {self._out}")
        last = nn.Conv2d(channels, self._out[0], 3, padding=1)
        if zero_init_last:
            zero_init_(last)
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1),
            make_activation(activation),
            resize_conv(channels, channels, (h, w), self._out[1:], owner="CGlowFeatureNet"),
            make_activation(activation),
            last,
        )

    def output_shape(self) -> tuple[int, ...]:
        return self._out

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        flat, packed = pack([x], "* c h w")
        return unpack(self.net(flat), packed, "* c h w")[0]
