"""residual_latent (MotionFlow eqs. 8-12): the untrained random walk, bounded scales, errors."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal

from eddies.core import RecipeError, ShapeError, build, validate_spec
from tests.priors.conftest import D64, MLP, make_temporal, sequence


def test_untrained_prior_is_the_random_walk():
    """Zero-initialised last layers (motionflow.txt eq. 11): p(z_t | z_<t) = N(z_{t-1}, I) at start,
    with z_0 = 0."""
    prior = make_temporal("blocks-image", randomise=False)
    z, _ = sequence(prior)
    prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
    ref = Independent(Normal(prev, torch.ones_like(prev)), 3).log_prob(z)
    torch.testing.assert_close(prior.log_prob_steps(z), ref)


def test_mean_is_a_residual_update_of_the_previous_latent():
    """mu_t = z_{t-1} + Delta_t (eq. 12): with the net's output replaced by a known Delta the mean
    moves by exactly that amount."""
    prior = make_temporal("per-step-mlp")
    z, _ = sequence(prior, batch=2, steps=4)
    with torch.no_grad():
        last = prior.net.last
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0, 0.0, 0.0], dtype=D64))
    mu, log_scale = prior.step_parameters(z)
    prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], 1)
    torch.testing.assert_close(mu, prev + torch.tensor([0.5, -1.0, 2.0], dtype=D64))
    torch.testing.assert_close(log_scale, torch.zeros_like(log_scale))


def test_log_scale_is_softly_bounded():
    prior = build({"type": "residual_latent", "net": MLP, "log_scale_bound": 2.0}, "priors", shape=(3,)).double()
    with torch.no_grad():
        prior.net.last.bias[3:].fill_(1e6)
    _, log_scale = prior.step_parameters(torch.zeros(1, 2, 3, dtype=D64))
    torch.testing.assert_close(log_scale, torch.full_like(log_scale, 2.0))


def test_long_rollouts_keep_only_the_receptive_field():
    """Generation keeps the last ``window`` latents (the receptive field), not the whole past."""
    prior = make_temporal("per-step-mlp")
    state = prior._initial_state(2, None, torch.zeros(2, 5, 3, dtype=D64))
    for _ in range(4):
        state = prior._advance(state, torch.zeros(2, 3, dtype=D64))
        assert state.shape[1] <= prior.window


def test_sequence_layouts_and_errors():
    prior = make_temporal("blocks-vector")
    with pytest.raises(ShapeError, match=r"ResidualLatent: z must have shape \(batch, T, 3\)"):
        prior.log_prob_steps(torch.zeros(4, 3, dtype=D64))
    with pytest.raises(ShapeError, match="one batch size"):
        prior.sample(n=2, history=torch.zeros(3, 2, 3, dtype=D64))
    with pytest.raises(ShapeError, match="is unconditional but received a context"):
        prior.log_prob_steps(torch.zeros(2, 4, 3, dtype=D64), torch.zeros(2, 5, dtype=D64))
    with pytest.raises(ShapeError, match="z_<t only"):
        build({"type": "residual_latent"}, "priors", shape=(3,), context_shape=(2,))
    with pytest.raises(ShapeError, match="0-2 spatial axes"):
        build({"type": "residual_latent"}, "priors", shape=(1, 2, 2, 2))
    with pytest.raises(RecipeError, match="head"):
        validate_spec({"type": "residual_latent", "head": MLP}, "priors")
    with pytest.raises(RecipeError, match="dilations"):
        validate_spec({"type": "residual_latent", "dilations": [1, 0]}, "priors")
    with pytest.raises(TypeError, match="dt"):
        prior.sample(n=2, steps=2, dt=0.5)
