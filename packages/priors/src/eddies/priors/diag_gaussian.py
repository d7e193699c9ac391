"""Diagonal Gaussian prior with learned or context-produced mean and log-scale.

``p(z | c) = prod_i N(z_i; mu_i(c), sigma_i(c)^2)`` over any event shape. Unconditional
(``context_shape=None``): ``mu`` and ``log sigma`` are free parameters of the event shape
(initialised to N(0, I)). Conditional: the head (:mod:`eddies.priors.head`) maps the context to
``(2 * shape[0], *shape[1:])`` raw values, split along the first event axis into ``mu`` and
``log sigma`` (channel-stacked, so a convolutional head can produce image-shaped parameters); this
is the conditionally factorised Gaussian of motionflow.txt eq. 9 with its parameters produced
from a given context. ``log sigma`` is bounded softly, ``b * tanh(raw / b)`` with ``b =
log_scale_bound`` (:func:`eddies.core.bounds.soft_bound`), so scales stay in ``[e^-b, e^b]``
without killing gradients. :meth:`DiagGaussian.distribution` returns ``p(z | c)`` as an
``Independent(Normal)``, so a model computes KL terms with ``torch.distributions.kl_divergence``.

References: Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion
Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt); Lu & Huang, "Structured Output
Learning with Conditional Generative Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.distributions import Independent

from eddies.core import Prior, register
from eddies.core.bounds import soft_bound
from eddies.priors.base import (
    batch_shape,
    check_context,
    check_temperature,
    diag_normal,
    diag_normal_log_prob,
    sample_batch,
)
from eddies.priors.head import ContextHead, HeadConfig, check_head_use


class DiagGaussianConfig(HeadConfig):
    """Config of :class:`DiagGaussian`."""

    log_scale_bound: float = Field(default=5.0, gt=0.0, description="soft bound b on |log sigma|")


@register(
    "priors", "diag_gaussian", version=1, config=DiagGaussianConfig,
    summary="Diagonal Gaussian; learned mean/log-scale or produced from a context by a head.",
    examples=[
        {"config": {}, "shape": (2,), "context_shape": None},
        {"config": {}, "shape": (1,), "context_shape": None},
        {"config": {}, "shape": (2, 2, 3), "context_shape": None},
        {"config": {}, "shape": (2,), "context_shape": (3,)},
        {"config": {"log_scale_bound": 2.0}, "shape": (2, 3), "context_shape": (4, 2)},
    ],
)
class DiagGaussian(Prior):
    """``log p(z | c) = sum_i log N(z_i; mu_i, sigma_i^2)``; temperature ``T`` samples
    ``mu + T * sigma * eps`` (``T = 0``: the mean).

    Example::

        >>> import torch
        >>> prior = DiagGaussian(shape=(3,), context_shape=(5,))
        >>> z, h = torch.randn(4, 3), torch.randn(4, 5)
        >>> prior.log_prob(z, h).shape
        torch.Size([4])
        >>> prior.sample(context=h, temperature=0.5).shape
        torch.Size([4, 3])
        >>> prior.distribution(h).batch_shape, prior.distribution(h).event_shape
        (torch.Size([4]), torch.Size([3]))
    """

    def __init__(
        self,
        head=None,
        log_scale_bound: float = 5.0,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        check_head_use("DiagGaussian", head, self.context_shape)
        self.log_scale_bound = float(log_scale_bound)
        if self.context_shape is None:
            self.mean = nn.Parameter(torch.zeros(self.shape))
            self.log_scale = nn.Parameter(torch.zeros(self.shape))
            self.head = None
        else:
            out_shape = (2 * self.shape[0], *self.shape[1:])
            self.head = ContextHead(self.context_shape, out_shape, head, "DiagGaussian")

    def parameters_for(self, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(mu, log sigma)``, broadcastable against ``(*batch, *shape)``."""
        if self.head is None:
            raw = self.log_scale
            mean = self.mean
        else:
            batch = batch_shape(self, context, self.context_shape, "context")
            out = self.head(context.reshape(-1, *self.context_shape))
            mean, raw = out.reshape(*batch, *out.shape[1:]).chunk(2, dim=len(batch))
        return mean, soft_bound(raw, self.log_scale_bound)

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        check_context(self, context, batch_shape(self, z))
        mean, log_scale = self.parameters_for(context)
        return diag_normal_log_prob(z, mean, log_scale, len(self.shape))

    def sample(self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        batch = sample_batch(self, n, context)
        t = check_temperature(self, temperature)
        mean, log_scale = self.parameters_for(context)
        mean = mean.expand(*batch, *self.shape)
        return mean + t * torch.exp(log_scale) * torch.randn_like(mean)

    def distribution(self, context: Tensor | None = None) -> Independent:
        """``p(z | context)`` as ``Independent(Normal(mu, sigma))``: batch shape the context's
        batch axes (``()`` without a context), event shape :attr:`shape`; temperature 1."""
        check_context(self, context, None)
        return diag_normal(*self.parameters_for(context), len(self.shape))
