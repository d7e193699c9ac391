"""DCGAN frame encoder and decoder (``dcgan_encoder``, ``dcgan_decoder``): SRVP's h_phi and g_theta on Moving MNIST.

SRVP (Franceschi, Delasalles, Chen, Lamprier & Gallinari, "Stochastic Latent Residual Video
Prediction", ICML 2020, arXiv:2002.09219; srvp.txt, appendix C.2) encodes each frame
independently, ``x~_t = h_phi(x_t)`` (section 3.3), and decodes ``x_t ~ N(g_theta(y_t, w), nu I)``
(eqs. 1 and 3), with "a DCGAN discriminator and generator architecture (Radford et al., 2016)
for Moving MNIST", the architecture of SVG (Denton & Fergus, ICML 2018), an encoding of size
128, and weights drawn from ``N(0, 0.02^2)``. For Moving MNIST there are **no skip connections**
(C.2: skips "from all layers of the encoder" are added for KTH, Human3.6M and BAIR only; the
protocol page ../shared/protocols/srvp_smmnist.md says the same), so the decoder reads one
vector, ``[y_t ; w]``, and nothing else.

Encoder, for frames ``(C, H, W)`` with ``H = W = 4 * 2^n`` (64: ``n = 4``, 32: ``n = 3``, 16:
``n = 2``)::

    conv4x4/2(C -> nf) -> LeakyReLU(0.2)                             # no norm on the first layer
    conv4x4/2(nf 2^(i-1) -> nf 2^i) -> BatchNorm -> LeakyReLU(0.2)   # i = 1 .. n-1
    conv4x4 valid (nf 2^(n-1) -> E) -> BatchNorm -> tanh             # 4 x 4 -> 1 x 1: the encoding

Decoder (the mirror image), from a vector ``(D,)`` to ``(C, H, W)``::

    convT4x4 valid (D -> nf 2^(n-1)) -> BatchNorm -> LeakyReLU(0.2)  # 1 x 1 -> 4 x 4
    convT4x4/2(nf 2^i -> nf 2^(i-1)) -> BatchNorm -> LeakyReLU(0.2)  # i = n-1 .. 1
    convT4x4/2(nf -> C) -> sigmoid                                   # pixels in [0, 1]

(``n = 0``, 4 x 4 frames: the encoder is the valid convolution alone, the decoder ``convT(D ->
C)``.) ``nf`` (``channels``; paper 64, the reduced configuration 16), the normaliser (``batch``,
``actnorm`` or ``none``), the output activations and the init's standard deviation are settings.
Convolution weights start from ``N(0, init_std^2)`` and biases at 0 (C.2); BatchNorm keeps
PyTorch's start (scale 1, shift 0). Leading axes beyond one batch axis are flattened and restored,
so a sequence ``(B, T, C, H, W)`` is encoded in one call.

Example::

    >>> import torch
    >>> enc = DCGANEncoder(channels=8, in_shape=(1, 32, 32), out_shape=(16,))
    >>> dec = DCGANDecoder(channels=8, in_shape=(20,), out_shape=(1, 32, 32))
    >>> enc(torch.rand(2, 5, 1, 32, 32)).shape, dec(torch.randn(3, 20)).shape
    (torch.Size([2, 5, 16]), torch.Size([3, 1, 32, 32]))
"""

from __future__ import annotations

import math

from einops import pack, unpack
from pydantic import Field
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.conditioners.normalization import NormName, make_norm
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.shapes import batch_axes


class DCGANConfig(ComponentConfig):
    """Config shared by :class:`DCGANEncoder` and :class:`DCGANDecoder`."""

    channels: int = Field(default=64, ge=1, description="nf, the width of the full-resolution layer (doubled "
                          "per halving; SRVP: 64)")
    norm: NormName = Field(default="batch", description="normaliser after every hidden convolution (DCGAN: batch)")
    negative_slope: float = Field(default=0.2, ge=0.0, description="slope of the LeakyReLUs")
    init_std: float | None = Field(default=0.02, gt=0.0, description="convolution weights ~ N(0, std^2), "
                                   "biases 0 (srvp.txt C.2); null: PyTorch's default init")


class DCGANEncoderConfig(DCGANConfig):
    output_norm: bool = Field(default=True, description="normalise the encoding before its activation (SVG)")
    output_activation: ActivationName = Field(default="tanh", description="on the encoding (SVG: tanh)")


class DCGANDecoderConfig(DCGANConfig):
    output_activation: ActivationName = Field(default="sigmoid", description="on the pixels (sigmoid: [0, 1])")


def _halvings(owner: str, size: tuple[int, ...]) -> int:
    """``n`` with ``H = W = 4 * 2^n`` for a frame of shape ``(C, H, W)``; else a ShapeError."""
    if len(size) != 3 or size[1] != size[2] or size[1] < 4 or size[1] & (size[1] - 1):
        raise ShapeError(f"{owner}: frames must be (C, H, W) with H = W a power of two >= 4 "
                         f"(64, 32, 16, ...), got {size}")
    return int(math.log2(size[1])) - 2


def _init(module: nn.Module, std: float | None) -> None:
    if std is None:
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _block(conv: nn.Module, norm: str, channels: int, slope: float) -> list[nn.Module]:
    return [conv, make_norm(norm, channels), nn.LeakyReLU(slope)]


_FRAME_EXAMPLES = [
    {"config": {"channels": 2}, "in_shape": (1, 8, 8), "out_shape": (3,), "batch": (3,)},
    {"config": {"channels": 2, "norm": "none", "output_norm": False, "output_activation": "none"},
     "in_shape": (2, 16, 16), "out_shape": (4,), "batch": (2, 2)},
    {"config": {"channels": 3, "norm": "actnorm"}, "in_shape": (1, 4, 4), "out_shape": (2,), "batch": (4,)},
]


@register(
    "conditioners", "dcgan_encoder", version=1, config=DCGANEncoderConfig,
    summary="DCGAN frame encoder (SVG/SRVP h_phi): strided 4x4 convolutions from a frame to a vector.",
    examples=_FRAME_EXAMPLES,
)
class DCGANEncoder(Conditioner):
    """``(*, C, H, W) -> (*, E)``, ``E = out_shape[0]`` (required); see the module docstring."""

    def __init__(
        self, channels: int = 64, norm: str = "batch", negative_slope: float = 0.2, init_std: float | None = 0.02,
        output_norm: bool = True, output_activation: str = "tanh", *,
        in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        n = _halvings("DCGANEncoder", self.in_shape)
        if self.requested_out_shape is None or len(self.requested_out_shape) != 1:
            raise ShapeError(f"DCGANEncoder: out_shape must be given as (features,), got {out_shape}")
        width = [self.in_shape[0]] + [channels * 2**i for i in range(n)]
        layers: list[nn.Module] = []
        for i in range(n):
            conv = nn.Conv2d(width[i], width[i + 1], 4, 2, 1, bias=norm == "none" or i == 0)
            layers += [conv, nn.LeakyReLU(negative_slope)] if i == 0 else _block(conv, norm, width[i + 1], negative_slope)
        (features,) = self.requested_out_shape
        layers += [nn.Conv2d(width[-1], features, 4, 1, 0, bias=not output_norm or norm == "none"),
                   make_norm(norm if output_norm else "none", features), make_activation(output_activation)]
        self.net = nn.Sequential(*layers)
        _init(self, init_std)

    def output_shape(self) -> tuple[int, ...]:
        return self.requested_out_shape

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        flat, packed = pack([x], "* c h w")
        return unpack(self.net(flat).flatten(1), packed, "* e")[0]


@register(
    "conditioners", "dcgan_decoder", version=1, config=DCGANDecoderConfig,
    summary="DCGAN frame decoder (SVG/SRVP g_theta): transposed 4x4 convolutions from a vector to a frame.",
    examples=[
        {"config": {"channels": 2}, "in_shape": (3,), "out_shape": (1, 8, 8), "batch": (3,)},
        {"config": {"channels": 2, "norm": "none", "output_activation": "none"}, "in_shape": (4,),
         "out_shape": (2, 16, 16), "batch": (2, 2)},
        {"config": {"channels": 3}, "in_shape": (2,), "out_shape": (1, 4, 4), "batch": (4,)},
    ],
)
class DCGANDecoder(Conditioner):
    """``(*, D) -> (*, C, H, W)``, ``(C, H, W) = out_shape`` (required); see the module docstring."""

    def __init__(
        self, channels: int = 64, norm: str = "batch", negative_slope: float = 0.2, init_std: float | None = 0.02,
        output_activation: str = "sigmoid", *,
        in_shape: tuple[int, ...], out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 1:
            raise ShapeError(f"DCGANDecoder: in_shape must be (features,), got {self.in_shape}")
        if self.requested_out_shape is None:
            raise ShapeError("DCGANDecoder: out_shape must be given as the frame shape (C, H, W)")
        n = _halvings("DCGANDecoder", self.requested_out_shape)
        frame_channels = self.requested_out_shape[0]
        layers: list[nn.Module] = []
        if n == 0:
            layers.append(nn.ConvTranspose2d(self.in_shape[0], frame_channels, 4, 1, 0))
        else:
            width = [channels * 2**i for i in range(n)][::-1]  # nf 2^(n-1), ..., nf
            bias = norm == "none"
            layers += _block(nn.ConvTranspose2d(self.in_shape[0], width[0], 4, 1, 0, bias=bias), norm, width[0],
                             negative_slope)
            for a, b in zip(width[:-1], width[1:], strict=True):
                layers += _block(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=bias), norm, b, negative_slope)
            layers.append(nn.ConvTranspose2d(width[-1], frame_channels, 4, 2, 1))
        layers.append(make_activation(output_activation))
        self.net = nn.Sequential(*layers)
        _init(self, init_std)

    def output_shape(self) -> tuple[int, ...]:
        return self.requested_out_shape

    def forward(self, v: Tensor) -> Tensor:
        batch_axes(self, v, self.in_shape)
        flat, packed = pack([v], "* d")
        return unpack(self.net(flat[:, :, None, None]), packed, "* c h w")[0]
