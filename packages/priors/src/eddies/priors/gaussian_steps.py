"""Causal Gaussian step priors: the density and the sampling loop of ``residual_latent`` and ``euler_state``.

A :class:`GaussianStepPrior` scores a sequence ``z_1..T`` as
``log p(z) = sum_t log N(z_t; mu_t, diag sigma_t^2)`` where ``(mu_t, log sigma_t)`` depend on
``z_<t`` (and the context) only. A subclass supplies

- :meth:`GaussianStepPrior.step_parameters`: the teacher-forced ``(mu_t, log sigma_t)`` of every
  step of a given sequence, each ``(B, T, *shape)``;
- three hooks for generation: ``_initial_state(batch, context, history, **options)``,
  ``_next_parameters(state) -> (mu, log sigma)`` of the next step (each ``(B, *shape)``), and
  ``_advance(state, z) -> state`` after ``z`` was drawn;

and inherits ``log_prob_steps``, ``step_distribution`` (the same Gaussians as
``torch.distributions`` objects, so a model computes KL terms in closed form with
``torch.distributions.kl_divergence``), ``rollout`` and ``sample``. Keyword ``options`` (for
``euler_state``: ``dt``) are passed through to the subclass's ``step_parameters`` and
``_initial_state``; an unknown one is a ``TypeError`` there.

Sampling at temperature ``T`` draws ``z_t = mu_t + T sigma_t eps_t`` step by step (``T = 0``:
the mean path). :meth:`GaussianStepPrior.rollout` returns the draws with the parameters it used,
a :class:`Rollout`, whose :meth:`Rollout.distribution` is ``p(z_t | z_<t)`` of every generated
step (for SRVP: ``p(z_t | y_{t-1})`` along the generated path).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.distributions import Independent

from eddies.core import ShapeError, TemporalPrior
from eddies.priors.base import (
    batch_shape,
    check_context,
    check_temperature,
    diag_normal,
    diag_normal_log_prob,
)


class Rollout(NamedTuple):
    """Steps drawn by :meth:`GaussianStepPrior.rollout`, each ``(B, steps, *shape)``: the draws
    ``z`` and the ``(mean, log_scale)`` of ``p(z_t | z_<t)`` they were drawn from (at
    temperature 1; the draw at temperature ``T`` is ``mean + T exp(log_scale) eps``)."""

    z: Tensor
    mean: Tensor
    log_scale: Tensor

    def distribution(self) -> Independent:
        """``p(z_t | z_<t)`` of every generated step: batch shape ``(B, steps)``, event ``shape``."""
        return diag_normal(self.mean, self.log_scale, self.mean.dim() - 2)


class GaussianStepPrior(TemporalPrior):
    """Base of the causal Gaussian step priors (see the module docstring for the hooks)."""

    def step_parameters(self, z: Tensor, context: Tensor | None = None, **options: Any) -> tuple[Tensor, Tensor]:
        """Teacher-forced ``(mu_t, log sigma_t)`` for every step of ``z`` (B, T, *shape); causal."""
        raise NotImplementedError

    def _initial_state(self, batch: int, context: Tensor | None, history: Tensor | None, **options: Any) -> Any:
        raise NotImplementedError

    def _next_parameters(self, state: Any) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _advance(self, state: Any, z: Tensor) -> Any:
        raise NotImplementedError

    # scoring ------------------------------------------------------------------------------
    def check_sequence(self, z: Tensor, context: Tensor | None) -> None:
        """``z`` is ``(batch, T, *shape)`` and the context, if the prior takes one, ``(batch, *context_shape)``."""
        lead = batch_shape(self, z)
        if len(lead) != 2:
            raise ShapeError(
                f"{type(self).__name__}: z must have shape (batch, T, {', '.join(map(str, self.shape))}), "
                f"got {tuple(z.shape)}"
            )
        check_context(self, context, lead[:1])

    def log_prob_steps(self, z: Tensor, context: Tensor | None = None, **options: Any) -> Tensor:
        """``log N(z_t; mu_t, sigma_t^2)`` for every step, shape (B, T)."""
        mean, log_scale = self.step_parameters(z, context, **options)
        return diag_normal_log_prob(z, mean, log_scale, len(self.shape))

    def step_distribution(self, z: Tensor, context: Tensor | None = None, **options: Any) -> Independent:
        """Teacher-forced ``p(z_t | z_<t, context)`` of every step of ``z``, as one
        ``Independent(Normal)`` of batch shape (B, T) and event shape :attr:`shape`."""
        return diag_normal(*self.step_parameters(z, context, **options), len(self.shape))

    # sampling -----------------------------------------------------------------------------
    def _sample_batch(self, n: int | None, context: Tensor | None, history: Tensor | None) -> int:
        sizes = {}
        if history is not None:
            self.check_sequence(history, context)
            sizes["history"] = history.shape[0]
        if check_context(self, context, None, batch_dims=1) is not None:  # one context per sequence
            sizes["context"] = context.shape[0]
        if n is not None:
            sizes["n"] = int(n)
        if not sizes or len(set(sizes.values())) != 1:
            raise ShapeError(
                f"{type(self).__name__}: sample needs one batch size from n, history or context; "
                f"got {sizes or 'none'}"
            )
        return next(iter(sizes.values()))

    def rollout(
        self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0,
        steps: int = 1, history: Tensor | None = None, **options: Any,
    ) -> Rollout:
        """Draw ``steps`` new steps one at a time, continuing ``history`` (B, T0, *shape) when
        given; the batch size comes from ``n``, ``history`` or ``context`` (which must agree)."""
        t = check_temperature(self, temperature)
        if steps < 1:
            raise ShapeError(f"{type(self).__name__}: steps must be >= 1, got {steps}")
        state = self._initial_state(self._sample_batch(n, context, history), context, history, **options)
        draws, means, scales = [], [], []
        for _ in range(steps):
            mean, log_scale = self._next_parameters(state)
            z = mean + t * log_scale.exp() * torch.randn_like(mean)
            state = self._advance(state, z)
            draws.append(z)
            means.append(mean)
            scales.append(log_scale)
        return Rollout(torch.stack(draws, 1), torch.stack(means, 1), torch.stack(scales, 1))

    def sample(  # type: ignore[override]
        self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0,
        steps: int = 1, history: Tensor | None = None, **options: Any,
    ) -> Tensor:
        """``steps`` new steps (B, steps, *shape), continuing ``history`` if given (see :meth:`rollout`)."""
        return self.rollout(n, context, temperature, steps, history, **options).z
