"""The prior contracts, written in :class:`Prior` and :class:`TemporalPrior`: densities over
latents, optionally conditioned and optionally temporal."""

from __future__ import annotations

from torch import Tensor, nn
from torch.distributions import Distribution


class Prior(nn.Module):
    """Base class of priors (runtime arguments: ``shape``, ``context_shape``).

    A :class:`Prior` over event shape ``shape`` implements ``log_prob(z, context=None)``: ``z`` of
    shape ``(*batch, *shape)`` (any number of leading batch axes) and, for a conditional prior, a
    context of shape ``(*batch, *context_shape)`` give the log-density (natural log, a density with
    respect to Lebesgue measure on the event) of shape ``batch``. A context is given if and only if
    the prior was built with a ``context_shape``; anything else is a :class:`eddies.core.ShapeError`
    (:func:`eddies.core.shapes.check_context`), never a silently ignored context.
    ``sample(n=None, context=None, temperature=1.0)`` draws ``(n, *shape)`` without a context and one
    draw per context row, ``(*batch, *shape)``, with one. ``temperature`` scales the spread (standard
    deviation for Gaussians, as in Glow: Kingma & Dhariwal 2018, arXiv:1807.03039); temperature 0
    returns the mode (for mixtures: the mean of the most probable component).

    For closed-form KL terms a prior hands out its distribution: :meth:`Prior.distribution` and
    :meth:`TemporalPrior.step_distribution` return ``torch.distributions`` objects whose
    ``event_shape`` is ``shape`` and whose ``log_prob`` is the prior's (at temperature 1), so a
    model writes ``torch.distributions.kl_divergence(q, prior.distribution(c))``. Priors without a
    closed form raise ``NotImplementedError``.

    The prior conformance kit (:mod:`eddies.core.testing.priors`) checks all of this, plus
    normalisation and sample moments by quadrature in 1-2 dimensions, for every registered prior.
    """

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
    """A causal prior over sequences ``z_1..T`` (runtime arguments as :class:`Prior`).

    A :class:`TemporalPrior` scores a sequence ``z`` of shape ``(batch, T, *shape)`` (one batch axis;
    its context, if any, is one per sequence, ``(batch, *context_shape)``) causally:
    ``log_prob_steps`` returns ``(batch, T)`` whose term ``t`` is ``log p(z_t | z_<t, context)``; it
    depends on ``z_t`` through its own value and on ``z_<t`` through its conditional, never on
    ``z_>t``; ``log_prob`` is their sum over ``t``. ``sample(n, context, temperature, steps,
    history)`` draws ``steps`` new steps ``(batch, steps, *shape)`` one at a time, continuing
    ``history`` ``(batch, T0, *shape)`` when given.
    """

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
