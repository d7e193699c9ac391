"""residual_dynamics: causality, step-by-step sampling vs teacher forcing, temperature, Euler states."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal

from eddies.core import RecipeError, ShapeError, build, validate_spec

D64 = torch.float64
MLP = {"type": "mlp", "hidden": [8], "activation": "tanh"}

# (config, event shape, context_shape): the built-in blocks on vectors, sequences and images, a
# per-step net, and SRVP's state mode.
VARIANTS = {
    "blocks-vector": ({"hidden": 4}, (3,), None),
    "blocks-1d": ({"hidden": 3, "dilations": [1, 2]}, (2, 3), None),
    "blocks-image": ({"hidden": 3, "dilations": [1]}, (2, 2, 3), None),
    "per-step-mlp": ({"net": MLP, "order": 2}, (3,), None),
    "state": ({"mode": "state", "net": MLP}, (2,), (3,)),
    "state-half-step": ({"mode": "state", "net": MLP, "dt": 0.5}, (2,), (3,)),
}


def make(name, randomise=True):
    """The variant with every parameter redrawn (so zero-initialised layers also act)."""
    config, shape, context_shape = VARIANTS[name]
    torch.manual_seed(0)
    prior = build({"type": "residual_dynamics", **config}, "priors", shape=shape, context_shape=context_shape)
    prior = prior.double()
    if randomise:
        with torch.no_grad():
            for p in prior.parameters():
                p.normal_(0.0, 0.4)
    return prior


def data(prior, batch=2, steps=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, steps, *prior.shape, generator=g, dtype=D64)
    c = None if prior.context_shape is None else torch.randn(batch, *prior.context_shape, generator=g, dtype=D64)
    return z, c


@pytest.mark.parametrize("name", VARIANTS)
def test_causal(name):
    """Step ``s``'s parameters ``(mu_s, log sigma_s)`` depend on ``z_<s`` only, so they do not move
    when any ``z_t`` with ``t >= s`` moves; hence the log-density term of step ``s`` depends on
    ``z_s`` (through its own value) and ``z_<s``, and not on ``z_t`` for ``t > s``. Checked on the
    autograd Jacobians in float64, with every weight randomised; the Jacobian of ``mu_s`` with
    respect to ``z_{s-1}`` must be non-zero (the check would pass vacuously otherwise)."""
    prior = make(name)
    z, c = data(prior, batch=1, steps=5)
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


@pytest.mark.parametrize("name", VARIANTS)
def test_step_by_step_sampling_agrees_with_teacher_forced_scoring(name):
    """Continuing a history step by step uses the same ``(mu_t, log sigma_t)`` that teacher-forced
    scoring computes for the completed sequence, and its log-density is that of the scored one."""
    prior = make(name)
    history, c = data(prior, batch=3, steps=2)
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
    prior = make(name).float()  # float32: float64 convolutions are slow on CPU
    _, c = data(prior, batch=1000)
    c = None if c is None else c.float()
    zero, mu, _ = prior.rollout(n=1000, context=c, steps=3, temperature=0.0)
    torch.testing.assert_close(zero, mu)
    torch.testing.assert_close(prior.step_parameters(zero, c)[0], zero)
    torch.manual_seed(0)
    for t in (0.5, 1.5):
        z, mu, log_scale = prior.rollout(n=1000, context=c, steps=3, temperature=t)
        eps = (z - mu) / log_scale.exp()
        assert abs(eps.std().item() - t) < 0.03 * t


def test_untrained_latent_prior_is_the_random_walk():
    """Zero-initialised last layers (motionflow.txt eq. 11): p(z_t | z_<t) = N(z_{t-1}, I) at start."""
    prior = make("blocks-image", randomise=False)
    z, _ = data(prior)
    prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
    ref = Independent(Normal(prev, torch.ones_like(prev)), 3).log_prob(z)
    torch.testing.assert_close(prior.log_prob_steps(z), ref)


def test_state_mode_euler_steps_and_step_size_change():
    """``y <- y + dt f(y, z_t)`` with ``1/dt`` substeps (srvp.txt eq. 2); ``dt`` can change at
    sampling time, and the integer-time states of a finer grid are what step_parameters uses."""
    prior = make("state")
    z, y0 = data(prior, batch=2, steps=3)
    f = prior.net
    ys = prior.states(z, y0)
    assert ys.shape == (2, 4, 3)
    torch.testing.assert_close(ys[:, 1], y0 + f(torch.cat([y0, z[:, 0]], -1)))
    half = prior.states(z, y0, dt=0.5)
    assert half.shape == (2, 7, 3)
    y_half = y0 + 0.5 * f(torch.cat([y0, z[:, 0]], -1))
    torch.testing.assert_close(half[:, 1], y_half)
    torch.testing.assert_close(half[:, 2], y_half + 0.5 * f(torch.cat([y_half, z[:, 0]], -1)))
    mu, _ = prior.step_parameters(z, y0, dt=0.5)
    torch.testing.assert_close(mu, prior._state_parameters(half[:, 0:5:2])[0])
    assert prior.sample(context=y0, steps=4, dt=0.25).shape == (2, 4, 2)
    assert not torch.allclose(prior.log_prob_steps(z, y0, dt=0.5), prior.log_prob_steps(z, y0))


def test_sequence_layouts_and_errors():
    prior = make("blocks-vector")
    with pytest.raises(ShapeError, match=r"z must have shape \(batch, T, 3\)"):
        prior.log_prob_steps(torch.zeros(4, 3, dtype=D64))
    with pytest.raises(ShapeError, match="one batch size"):
        prior.sample(n=2, history=torch.zeros(3, 2, 3, dtype=D64))
    with pytest.raises(ShapeError, match="z_<t only"):
        build({"type": "residual_dynamics"}, "priors", shape=(3,), context_shape=(2,))
    state = make("state")
    with pytest.raises(ShapeError, match="needs a context"):
        state.log_prob_steps(torch.zeros(2, 3, 2, dtype=D64))
    with pytest.raises(RecipeError, match="needs `net`"):
        validate_spec({"type": "residual_dynamics", "mode": "state"}, "priors")
    with pytest.raises(RecipeError, match="dt must be 1/n"):
        validate_spec({"type": "residual_dynamics", "dt": 0.3}, "priors")
    with pytest.raises(RecipeError, match="head"):
        validate_spec({"type": "residual_dynamics", "head": MLP}, "priors")
