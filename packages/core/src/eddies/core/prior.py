"""The prior contract: densities over latents, optionally conditioned and optionally temporal.

A :class:`Prior` over event shape ``shape`` implements ``log_prob(z, context=None) -> (batch,)``
and ``sample(n=None, context=None, temperature=1.0)``; ``n`` is the number of samples when there
is no context (with a context, one sample per context row). ``temperature`` scales the spread
(standard deviation for Gaussians, as in Glow); temperature 0 returns the mode (for mixtures:
the mean of the most probable component).

A :class:`TemporalPrior` scores a sequence ``z`` of shape ``(batch, T, *shape)`` causally:
``log_prob_steps`` returns ``(batch, T)`` where step ``t`` depends only on ``z_<=t`` through its
own term and on ``z_<t`` through its conditional; ``sample(n, steps, ...)`` draws step by step.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import Distribution


class Prior(nn.Module):
    """Base class of priors (runtime arguments: ``shape``, ``context_shape``)."""

    def __init__(self, shape: tuple[int, ...], context_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.context_shape = None if context_shape is None else tuple(int(s) for s in context_shape)

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def sample(
        self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0
    ) -> Tensor:
        raise NotImplementedError

    def distribution(self, context: Tensor | None = None) -> Distribution:
        """``p(z | context)`` as a ``torch.distributions`` object, so models compute KL terms in
        closed form (``torch.distributions.kl_divergence``). Its ``event_shape`` is
        :attr:`shape`; its ``batch_shape`` the context's batch axes (``()`` without a context).
        Priors without a closed form raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its distribution")


class TemporalPrior(Prior):
    """A causal prior over sequences ``z_1..T`` (runtime arguments as :class:`Prior`)."""

    def log_prob_steps(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """Per-step log-densities ``log p(z_t | z_<t)`` of shape (batch, T)."""
        raise NotImplementedError

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self.log_prob_steps(z, context).sum(dim=1)

    def step_distribution(self, z: Tensor, context: Tensor | None = None) -> Distribution:
        """Teacher-forced ``p(z_t | z_<t, context)`` for every step of ``z`` (B, T, *shape), as one
        ``torch.distributions`` object of ``batch_shape`` (B, T) and ``event_shape`` :attr:`shape`;
        its ``log_prob(z)`` equals :meth:`log_prob_steps`."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its step distributions")

    def sample(  # type: ignore[override]
        self,
        n: int | None = None,
        context: Tensor | None = None,
        temperature: float = 1.0,
        steps: int = 1,
        history: Tensor | None = None,
    ) -> Tensor:
        """Draw ``steps`` new steps, continuing ``history`` (batch, T0, *shape) when given."""
        raise NotImplementedError
