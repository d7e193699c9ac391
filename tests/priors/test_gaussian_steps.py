"""Behaviour shared by the causal Gaussian step priors (residual_latent, euler_state): causality,
step-by-step sampling vs teacher forcing, temperature, and the step distributions."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from tests.priors.conftest import TEMPORAL_VARIANTS, make_temporal, sequence


@pytest.mark.parametrize("name", TEMPORAL_VARIANTS)
def test_causal(name):
    """Step ``s``'s parameters ``(mu_s, log sigma_s)`` depend on ``z_<s`` only, so they do not move
    when any ``z_t`` with ``t >= s`` moves; hence the log-density term of step ``s`` depends on
    ``z_s`` (through its own value) and ``z_<s``, and not on ``z_t`` for ``t > s``. Checked on the
    autograd Jacobians in float64, with every weight randomised; the Jacobian of ``mu_s`` with
    respect to ``z_{s-1}`` must be non-zero (the check would pass vacuously otherwise). The kit
    checks the log-density part for every registered example; this also checks the parameters."""
    prior = make_temporal(name)
    z, c = sequence(prior, batch=1, steps=5)
    T = z.shape[1]
    jac_mu, jac_scale = torch.func.jacrev(lambda x: prior.step_parameters(x, c), argnums=0)(z)
    jac_lp = torch.func.jacrev(lambda x: prior.log_prob_steps(x, c))(z)
    for s in range(T):
        for t in range(T):
            mu = jac_mu[0, s].reshape(-1, T, *prior.shape)[:, t].abs().max()
            scale = jac_scale[0, s].reshape(-1, T, *prior.shape)[:, t].abs().max()
            term = jac_lp[0, s, 0, t].abs().max()
            if t >= s:
                assert mu == 0 and scale == 0, (s, t, mu, scale)
            if t > s:
                assert term == 0, (s, t, term)
            if t == s - 1:
                assert mu > 0 and scale > 0, (s, t)
        assert jac_lp[0, s, 0, s].abs().max() > 0


@pytest.mark.parametrize("name", TEMPORAL_VARIANTS)
def test_step_by_step_sampling_agrees_with_teacher_forced_scoring(name):
    """Continuing a history step by step uses the same ``(mu_t, log sigma_t)`` that teacher-forced
    scoring computes for the completed sequence, and its log-density is that of the scored one."""
    prior = make_temporal(name)
    history, c = sequence(prior, batch=3, steps=2)
    new, mu, log_scale = prior.rollout(context=c, steps=4, history=history)
    full = torch.cat([history, new], dim=1)
    mu_tf, log_scale_tf = prior.step_parameters(full, c)
    torch.testing.assert_close(mu, mu_tf[:, 2:])
    torch.testing.assert_close(log_scale, log_scale_tf[:, 2:])
    event = len(prior.shape)
    ref = Independent(Normal(mu, log_scale.exp()), event).log_prob(new)
    torch.testing.assert_close(prior.log_prob_steps(full, c)[:, 2:], ref)
    # Without a history the first step starts from z_0 = 0 (latent) or y_0 = context (state).
    new, mu, _ = prior.rollout(n=3, context=c, steps=3)
    torch.testing.assert_close(prior.step_parameters(new, c)[0], mu)


@pytest.mark.parametrize("name", ["blocks-vector", "state"])
def test_temperature(name):
    """``z_t = mu_t + T sigma_t eps``: ``T = 0`` is the mean path, ``(z - mu) / sigma`` has std ``T``."""
    prior = make_temporal(name).float()  # float32: float64 convolutions are slow on CPU
    _, c = sequence(prior, batch=1000)
    c = None if c is None else c.float()
    zero, mu, _ = prior.rollout(n=1000, context=c, steps=3, temperature=0.0)
    torch.testing.assert_close(zero, mu)
    torch.testing.assert_close(prior.step_parameters(zero, c)[0], zero)
    torch.manual_seed(0)
    for t in (0.5, 1.5):
        z, mu, log_scale = prior.rollout(n=1000, context=c, steps=3, temperature=t)
        eps = (z - mu) / log_scale.exp()
        assert abs(eps.std().item() - t) < 0.03 * t


@pytest.mark.parametrize("name", TEMPORAL_VARIANTS)
def test_step_distribution_is_the_teacher_forced_density(name):
    """``step_distribution(z)`` is ``Independent(Normal)`` of batch (B, T), event ``shape``, with the
    parameters of :meth:`step_parameters` and ``log_prob(z) == log_prob_steps(z)``."""
    prior = make_temporal(name)
    z, c = sequence(prior, batch=2, steps=4)
    dist = prior.step_distribution(z, c)
    assert isinstance(dist, Independent) and isinstance(dist.base_dist, Normal)
    assert dist.batch_shape == (2, 4) and dist.event_shape == prior.shape
    mu, log_scale = prior.step_parameters(z, c)
    torch.testing.assert_close(dist.mean, mu)
    torch.testing.assert_close(dist.stddev, log_scale.exp())
    torch.testing.assert_close(dist.log_prob(z), prior.log_prob_steps(z, c))


@pytest.mark.parametrize("name", ["blocks-1d", "state-image-head"])
def test_closed_form_kl_between_step_distributions_matches_monte_carlo(name):
    """The KL term a latent-variable model needs, ``KL(q(z_t) || p(z_t | z_<t))`` per step, in
    closed form from ``torch.distributions.kl_divergence``, against a Monte Carlo estimate
    ``E_q[log q - log p]`` (4000 draws, within 5 standard errors)."""
    prior = make_temporal(name)
    z, c = sequence(prior, batch=2, steps=3)
    p = prior.step_distribution(z, c)
    g = torch.Generator().manual_seed(3)
    q = Independent(Normal(p.mean + 0.3 * torch.randn(p.mean.shape, generator=g, dtype=p.mean.dtype),
                           p.stddev * torch.exp(0.2 * torch.randn(p.mean.shape, generator=g, dtype=p.mean.dtype))),
                    len(prior.shape))
    kl = kl_divergence(q, p)
    assert kl.shape == (2, 3)
    torch.manual_seed(0)
    x = q.sample((4000,))
    terms = q.log_prob(x) - p.log_prob(x)
    se = terms.std(0) / 4000**0.5
    assert ((terms.mean(0) - kl).abs() <= 5 * se).all(), (terms.mean(0), kl, se)


@pytest.mark.parametrize("name", ["blocks-vector", "state-half-step"])
def test_rollout_distribution_is_the_generated_steps_prior(name):
    """``rollout(...).distribution()`` is ``p(z_t | z_<t)`` (SRVP: ``p(z_t | y_{t-1})``) of each
    generated step: the step distribution of the generated sequence."""
    prior = make_temporal(name)
    _, c = sequence(prior, batch=2)
    out = prior.rollout(n=2, context=c, steps=3)
    dist = out.distribution()
    assert dist.batch_shape == (2, 3) and dist.event_shape == prior.shape
    torch.testing.assert_close(dist.log_prob(out.z), prior.step_distribution(out.z, c).log_prob(out.z))
