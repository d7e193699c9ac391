"""euler_state's SRVP extensions (srvp.txt section 4, C.2): MLP dynamics, orthogonal init of f,
trajectory rates, generate, state_distribution, and an empty z (the 'without z' ablation)."""

from __future__ import annotations

import pytest
import torch

from eddies.core import RecipeError, build, validate_spec

D64 = torch.float64
MLP = {"type": "mlp", "hidden": [6], "activation": "tanh"}


def make(shape=(2,), **config):
    torch.manual_seed(0)
    return build({"type": "euler_state", "net": MLP, **config}, "priors", shape=shape, context_shape=(3,)).double()


def test_trajectory_rates_are_the_residuals():
    prior = make(dt=0.5)
    y0, z = torch.randn(2, 3, dtype=D64), torch.randn(2, 3, 2, dtype=D64)
    states, rates = prior.trajectory(z, y0)
    assert states.shape == (2, 7, 3) and rates.shape == (2, 6, 3)
    torch.testing.assert_close(states[:, 1:], states[:, :-1] + 0.5 * rates)
    torch.testing.assert_close(rates[:, 1], prior.net(torch.cat([states[:, 1], z[:, 0]], -1)))
    torch.testing.assert_close(states, prior.states(z, y0))


def test_generate_draws_like_rollout_and_returns_its_states():
    prior = make(head=MLP)
    y0 = torch.randn(4, 3, dtype=D64)
    torch.manual_seed(3)
    out, states, rates = prior.generate(y0, steps=5, temperature=0.8, dt=0.5)
    torch.manual_seed(3)
    ref = prior.rollout(context=y0, steps=5, temperature=0.8, dt=0.5)
    torch.testing.assert_close(out.z, ref.z)
    torch.testing.assert_close(out.mean, ref.mean)
    torch.testing.assert_close(states, prior.states(ref.z, y0, dt=0.5))
    assert rates.shape == (4, 10, 3)


def test_state_distribution_is_the_step_distribution_along_the_states():
    prior = make(head=MLP)
    y0, z = torch.randn(2, 3, dtype=D64), torch.randn(2, 4, 2, dtype=D64)
    states = prior.states(z, y0)
    ref = prior.step_distribution(z, y0)
    got = prior.state_distribution(states[:, :-1])
    torch.testing.assert_close(got.log_prob(z), ref.log_prob(z))


def test_mlp_dynamics():
    prior = make(residual=False)
    y0, z = torch.randn(2, 3, dtype=D64), torch.randn(2, 2, 2, dtype=D64)
    states = prior.states(z, y0)
    torch.testing.assert_close(states[:, 2], prior.net(torch.cat([states[:, 1], z[:, 1]], -1)))
    with pytest.raises(ValueError, match="dt must be 1"):
        prior.states(z, y0, dt=0.5)
    with pytest.raises(RecipeError, match="dt = 1"):
        validate_spec({"type": "euler_state", "net": MLP, "residual": False, "dt": 0.5}, "priors")


def test_orthogonal_init_with_gain():
    prior = make(init_gain=1.41, net={"type": "mlp", "hidden": [5, 5]})
    square = prior.net.hidden[1][0].weight  # 5 x 5
    torch.testing.assert_close(square @ square.T, 1.41**2 * torch.eye(5, dtype=D64), atol=1e-5, rtol=0)  # float32 init


def test_empty_z_is_a_deterministic_ode():
    prior = make(shape=(0,))
    assert prior.head is None
    y0 = torch.randn(2, 3, dtype=D64)
    z = torch.zeros(2, 4, 0, dtype=D64)
    assert torch.equal(prior.log_prob(z, y0), torch.zeros(2, dtype=D64))
    states = prior.states(z, y0)
    torch.testing.assert_close(states[:, 1], y0 + prior.net(y0))
    out, gen, _ = prior.generate(y0, steps=4, temperature=1.0)
    assert out.z.shape == (2, 4, 0)
    torch.testing.assert_close(gen, states)
    with pytest.raises(Exception, match="head"):
        make(shape=(0,), head=MLP)
