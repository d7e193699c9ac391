"""Volume-preserving reorderings of channels (images) or features (vectors): ``reverse``, ``permute``.

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS 2018, arXiv:1807.03039; Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture
Density Network", 2020, arXiv:2008.02144 (frmdn.txt).

RealNVP and FRMDN alternate the roles of the two coupling halves "by swapping two parts"
(frmdn.txt section 3.2); ``reverse`` does this by reversing axis 1 (Glow's "reverse" variant of
the 1x1 convolution), ``permute`` by a fixed random permutation (stored as a buffer, so it is
saved and loaded). Both have ``log|det| = 0``. Example::

    >>> import torch
    >>> z, logdet = Reverse(shape=(3,))(torch.tensor([[1.0, 2.0, 3.0]]))
    >>> z.tolist(), logdet.tolist()
    ([[3.0, 2.0, 1.0]], [0.0])
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from eddies.core import Bijection, ComponentConfig, register, zeros_logdet


class Reordering(Bijection):
    """Apply a fixed permutation ``perm`` of axis 1 (unconditional: it states ``context_shape=None``)."""

    def __init__(self, perm: Tensor, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape)
        self.register_buffer("perm", perm.long())
        self.register_buffer("inverse_perm", torch.argsort(self.perm), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.inverse_perm = torch.argsort(self.perm)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x.index_select(1, self.perm), zeros_logdet(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return z.index_select(1, self.inverse_perm), zeros_logdet(z)


@register(
    "flows", "reverse", version=1, config=ComponentConfig,
    summary="Reverse the order of channels/features (swap coupling halves); log-det 0.",
    examples=[{"config": {}, "shape": (5,), "context_shape": None},
              {"config": {}, "shape": (3, 2, 2), "context_shape": None}],
)
class Reverse(Reordering):
    """``z = x[:, ::-1]`` along channels/features (frmdn.txt section 3.2, swapping the halves)."""

    def __init__(self, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(torch.arange(shape[0] - 1, -1, -1), shape=shape)


class PermuteConfig(ComponentConfig):
    """Config of ``permute``."""

    seed: int | None = Field(None, description="seed of the permutation (None: torch's global RNG)")


@register(
    "flows", "permute", version=1, config=PermuteConfig,
    summary="Fixed random permutation of channels/features (saved as a buffer); log-det 0.",
    examples=[{"config": {}, "shape": (6,), "context_shape": None},
              {"config": {"seed": 3}, "shape": (4, 2, 1), "context_shape": None}],
)
class Permute(Reordering):
    """``z = x[:, perm]`` with a fixed random ``perm`` (RealNVP/MAF-style random orderings)."""

    def __init__(self, seed: int | None = None, *, shape: tuple[int, ...], context_shape=None):
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        super().__init__(torch.randperm(shape[0], generator=generator), shape=shape)
