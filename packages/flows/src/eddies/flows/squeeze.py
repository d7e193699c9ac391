"""Space-to-depth by 2: ``squeeze`` (RealNVP section 3.6; Glow's multi-scale architecture).

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS 2018, arXiv:1807.03039.

``(C, H, W) -> (4C, H/2, W/2)``: each 2x2 block of a channel becomes 4 channels; a permutation
of entries, so ``log|det| = 0``. Example::

    >>> import torch
    >>> z, logdet = Squeeze(shape=(1, 2, 2))(torch.arange(4.0).reshape(1, 1, 2, 2))
    >>> z.flatten().tolist(), z.shape
    ([0.0, 1.0, 2.0, 3.0], torch.Size([1, 4, 1, 1]))
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor

from eddies.core import Bijection, ComponentConfig, ShapeError, register, zeros_logdet


@register(
    "flows", "squeeze", version=1, config=ComponentConfig,
    summary="Space-to-depth by 2: (C, H, W) -> (4C, H/2, W/2); log-det 0.",
    examples=[{"config": {}, "shape": (2, 4, 2), "context_shape": None}],
)
class Squeeze(Bijection):
    """``b c (h 2) (w 2) -> b (c 2 2) h w`` (see the module docstring)."""

    def __init__(self, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape)
        if len(self.shape) != 3 or self.shape[1] % 2 or self.shape[2] % 2:
            raise ShapeError(f"Squeeze: needs an image shape (C, H, W) with even H and W, got {self.shape}")

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.shape
        return (4 * c, h // 2, w // 2)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return rearrange(x, "b c (h i) (w j) -> b (c i j) h w", i=2, j=2), zeros_logdet(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.out_shape)
        self.check_context(context, z.shape[0])
        return rearrange(z, "b (c i j) h w -> b c (h i) (w j)", i=2, j=2), zeros_logdet(z)
