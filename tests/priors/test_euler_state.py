"""euler_state (SRVP eqs. 1-2): Euler steps, the step size at call time, states, errors."""

from __future__ import annotations

import pytest
import torch

from eddies.core import RecipeError, ShapeError, build, validate_spec
from tests.priors.conftest import D64, MLP, make_temporal, sequence


def test_euler_steps_and_step_size_change():
    """``y <- y + dt f(y, z_t)`` with ``1/dt`` substeps (srvp.txt eq. 2); ``dt`` can change at
    sampling time, and the integer-time states of a finer grid are what step_parameters uses."""
    prior = make_temporal("state")
    z, y0 = sequence(prior, batch=2, steps=3)
    f = prior.net
    ys = prior.states(z, y0)
    assert ys.shape == (2, 4, 3)
    torch.testing.assert_close(ys[:, 0], y0)
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


def test_half_step_generation_continues_the_states_it_decodes():
    """Generating with ``dt = 1/2`` (srvp.txt section 4): the rollout's parameters are those of the
    states that ``states(z, y0, dt=0.5)`` returns at integer times, and the step distribution
    with the same ``dt`` scores the generated path as the rollout drew it."""
    prior = make_temporal("state")
    _, y0 = sequence(prior, batch=2)
    out = prior.rollout(context=y0, steps=3, dt=0.5, temperature=0.7)
    ys = prior.states(out.z, y0, dt=0.5)
    assert ys.shape == (2, 7, 3)
    torch.testing.assert_close(out.mean, prior._state_parameters(ys[:, 0:6:2])[0])
    torch.testing.assert_close(out.distribution().log_prob(out.z),
                               prior.step_distribution(out.z, y0, dt=0.5).log_prob(out.z))


def test_configured_dt_is_the_default_of_every_call():
    prior = make_temporal("state-half-step")
    z, y0 = sequence(prior, batch=2, steps=2)
    assert prior.states(z, y0).shape == (2, 5, 3)
    torch.testing.assert_close(prior.log_prob_steps(z, y0), prior.log_prob_steps(z, y0, dt=0.5))


def test_errors():
    prior = make_temporal("state")
    with pytest.raises(ShapeError, match="needs a context"):
        prior.log_prob_steps(torch.zeros(2, 3, 2, dtype=D64))
    with pytest.raises(ShapeError, match=r"context must have shape \(batch, 3\)"):
        prior.sample(context=torch.zeros(2, 4, 3, dtype=D64), steps=2)
    with pytest.raises(ShapeError, match=r"context_shape=\(S,\)"):
        build({"type": "euler_state", "net": MLP}, "priors", shape=(2,), context_shape=None)
    with pytest.raises(RecipeError, match="net"):
        validate_spec({"type": "euler_state"}, "priors")
    with pytest.raises(RecipeError, match="dt must be 1/n"):
        validate_spec({"type": "euler_state", "net": MLP, "dt": 0.3}, "priors")
    with pytest.raises(ValueError, match="dt must be 1/n"):
        prior.sample(context=torch.zeros(2, 3, dtype=D64), steps=2, dt=0.3)
