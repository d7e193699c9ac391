"""The standard normal prior ``N(0, I)`` over any event shape (the Glow / c-Glow prior).

cglow.txt: the latent of the conditional Glow is a standard Gaussian; sampling at temperature
``T`` draws ``z = T * eps`` (the standard deviation is scaled, as in Glow), so ``T = 0`` returns
the mode ``z = 0``. :meth:`StandardNormal.distribution` returns it as ``Independent(Normal(0, 1))``.

References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS
2018, arXiv:1807.03039 (temperature); Lu & Huang, "Structured Output Learning with Conditional
Generative Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent

from eddies.core import ComponentConfig, Prior, ShapeError, register
from eddies.priors.base import (
    batch_shape,
    check_context,
    check_temperature,
    diag_normal,
    diag_normal_log_prob,
    sample_batch,
)


class StandardNormalConfig(ComponentConfig):
    """``standard_normal`` has no settings."""


@register(
    "priors", "standard_normal", version=1, config=StandardNormalConfig,
    summary="Standard normal N(0, I) over any event shape; temperature scales the std.",
    examples=[
        {"config": {}, "shape": (2,), "context_shape": None},
        {"config": {}, "shape": (1,), "context_shape": None},
        {"config": {}, "shape": (2, 3, 2), "context_shape": None},
    ],
)
class StandardNormal(Prior):
    """``log p(z) = sum_i log N(z_i; 0, 1)`` over the event axes.

    Unconditional: built with ``context_shape=None``. ``sample(n, temperature=T)`` returns
    ``T * eps`` with ``eps ~ N(0, I)``, shape ``(n, *shape)``, in the module's dtype and device.

    Example::

        >>> import torch
        >>> prior = StandardNormal(shape=(3,))
        >>> prior.log_prob(torch.zeros(2, 3))
        tensor([-2.7568, -2.7568])
        >>> prior.sample(4, temperature=0.7).shape
        torch.Size([4, 3])
        >>> prior.distribution().log_prob(torch.zeros(2, 3))
        tensor([-2.7568, -2.7568])
    """

    def __init__(self, *, shape: tuple[int, ...], context_shape: tuple[int, ...] | None = None):
        super().__init__(shape, context_shape)
        if self.context_shape is not None:
            raise ShapeError(
                f"StandardNormal is unconditional; got context_shape={self.context_shape} "
                "(use diag_gaussian with a context)"
            )
        # Carries dtype and device for sampling; not part of the state dict.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        batch_shape(self, z)
        check_context(self, context, None)
        return diag_normal_log_prob(z, 0.0, 0.0, len(self.shape))

    def sample(self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        batch = sample_batch(self, n, context)
        t = check_temperature(self, temperature)
        a = self._anchor
        return t * torch.randn(*batch, *self.shape, dtype=a.dtype, device=a.device)

    def distribution(self, context: Tensor | None = None) -> Independent:
        """``N(0, I)`` as ``Independent(Normal)``: batch shape ``()``, event shape :attr:`shape`."""
        check_context(self, context, None)
        zeros = self._anchor.new_zeros(self.shape)
        return diag_normal(zeros, zeros, len(self.shape))
