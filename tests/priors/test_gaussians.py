"""standard_normal and diag_gaussian against torch.distributions references (float64), and their
``distribution()``."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from eddies.core import ShapeError, build

D64 = torch.float64


def prior(name, shape, context_shape=None, **config):
    torch.manual_seed(0)
    return build({"type": name, **config}, "priors", shape=shape, context_shape=context_shape).double()


def test_standard_normal_matches_reference_on_any_event_shape():
    p = prior("standard_normal", (2, 3, 2))
    z = torch.randn(4, 5, 2, 3, 2, dtype=D64)
    ref = Independent(Normal(torch.zeros((), dtype=D64), 1.0).expand((2, 3, 2)), 3).log_prob(z)
    torch.testing.assert_close(p.log_prob(z), ref)


def test_standard_normal_temperature_scales_the_standard_deviation():
    p = prior("standard_normal", (3,))
    torch.manual_seed(0)
    for t in (0.3, 1.0, 1.7):
        x = p.sample(40_000, temperature=t)
        torch.testing.assert_close(x.std(0), torch.full((3,), t, dtype=D64), rtol=0.02, atol=0)
    assert torch.equal(p.sample(4, temperature=0.0), torch.zeros(4, 3, dtype=D64))
    assert p.sample(2).dtype == D64


def test_diag_gaussian_free_parameters_match_reference():
    p = prior("diag_gaussian", (2, 3))
    with torch.no_grad():
        p.mean.copy_(torch.randn(2, 3))
        p.log_scale.copy_(torch.randn(2, 3))
    z = torch.randn(5, 2, 3, dtype=D64)
    mean, log_scale = p.parameters_for(None)
    torch.testing.assert_close(log_scale, 5.0 * torch.tanh(p.log_scale / 5.0))
    ref = Independent(Normal(p.mean, log_scale.exp()), 2).log_prob(z)
    torch.testing.assert_close(p.log_prob(z), ref)


def test_diag_gaussian_from_context_matches_reference_and_handles_sequences():
    p = prior("diag_gaussian", (3,), context_shape=(4,))
    z, h = torch.randn(2, 5, 3, dtype=D64), torch.randn(2, 5, 4, dtype=D64)
    raw = p.head(h.reshape(10, 4))
    mean, log_scale = raw[:, :3], 5.0 * torch.tanh(raw[:, 3:] / 5.0)
    ref = Independent(Normal(mean, log_scale.exp()), 1).log_prob(z.reshape(10, 3))
    lp = p.log_prob(z, h)
    assert lp.shape == (2, 5)
    torch.testing.assert_close(lp.reshape(10), ref)


def test_diag_gaussian_temperature():
    """``mu + T sigma eps``: std scales by T, and T = 0 returns the mean."""
    p = prior("diag_gaussian", (2,), context_shape=(3,))
    h = torch.randn(1, 3, dtype=D64).expand(40_000, 3)
    mean, log_scale = p.parameters_for(h[:1])
    torch.testing.assert_close(p.sample(context=h[:2], temperature=0.0), mean.expand(2, 2))
    torch.manual_seed(0)
    for t in (0.5, 2.0):
        x = p.sample(context=h, temperature=t)
        torch.testing.assert_close(x.std(0), t * log_scale.exp()[0], rtol=0.02, atol=0)


def test_diag_gaussian_log_scale_is_bounded():
    p = prior("diag_gaussian", (2,), log_scale_bound=2.0)
    with torch.no_grad():
        p.log_scale.copy_(torch.tensor([1e6, -1e6]))
    _, log_scale = p.parameters_for(None)
    torch.testing.assert_close(log_scale, torch.tensor([2.0, -2.0], dtype=D64))


def test_diag_gaussian_image_shaped_context_with_a_head_spec():
    pytest.importorskip("eddies.conditioners")
    from eddies.core import CONDITIONERS

    if "cnn" not in CONDITIONERS:
        pytest.skip("no cnn conditioner registered")
    p = prior("diag_gaussian", (2, 4, 4), context_shape=(3, 4, 4), head={"type": "cnn", "channels": [8], "kernel_sizes": [3, 3]})
    z, c = torch.randn(2, 2, 4, 4, dtype=D64), torch.randn(2, 3, 4, 4, dtype=D64)
    raw = p.head(c)  # (2, 4, 4, 4): mu and raw log sigma stacked along the channels
    mean, log_scale = raw[:, :2], 5.0 * torch.tanh(raw[:, 2:] / 5.0)
    ref = Independent(Normal(mean, log_scale.exp()), 3).log_prob(z)
    torch.testing.assert_close(p.log_prob(z, c), ref)
    assert p.sample(context=c).shape == (2, 2, 4, 4)
    torch.testing.assert_close(p.sample(context=c, temperature=0.0), mean)


def test_errors_name_the_problem():
    with pytest.raises(ShapeError, match="StandardNormal is unconditional"):
        prior("standard_normal", (2,), context_shape=(3,))
    with pytest.raises(ShapeError, match="needs the number of samples"):
        prior("standard_normal", (2,)).sample()
    with pytest.raises(ShapeError, match=r"DiagGaussian: z must have shape \(\*batch, 2, 3\), got \(4, 3, 2\)"):
        prior("diag_gaussian", (2, 3)).log_prob(torch.zeros(4, 3, 2, dtype=D64))
    with pytest.raises(ShapeError, match="is unconditional but received a context"):
        prior("diag_gaussian", (2,)).log_prob(torch.zeros(4, 2, dtype=D64), torch.zeros(4, 3, dtype=D64))
    with pytest.raises(ShapeError, match=r"context must have shape \(\*batch, 3\)"):
        prior("diag_gaussian", (2,), (3,)).log_prob(torch.zeros(4, 2, dtype=D64), torch.zeros(4, 5, dtype=D64))


def test_a_head_without_a_context_is_an_error():
    with pytest.raises(ShapeError, match="head .* was given but the prior was built without a context"):
        prior("diag_gaussian", (2,), head={"type": "mlp"})
    with pytest.raises(ShapeError, match="without a context"):
        prior("gmm_lowrank", (2,), head={"type": "mlp"})


def test_distributions_have_the_priors_density_and_shapes():
    """``distribution(context)`` is ``Independent(Normal)`` with event shape ``prior.shape``, batch
    shape the context's batch axes, and the prior's log-density."""
    cases = [
        (prior("standard_normal", (2, 3)), None, ()),
        (prior("diag_gaussian", (2, 3)), None, ()),
        (prior("diag_gaussian", (3,), context_shape=(4,)), torch.randn(2, 5, 4, dtype=D64), (2, 5)),
    ]
    with torch.no_grad():
        cases[1][0].mean.normal_()
        cases[1][0].log_scale.normal_()
    for p, c, batch in cases:
        dist = p.distribution(c)
        assert isinstance(dist, Independent) and dist.event_shape == p.shape and dist.batch_shape == batch
        z = torch.randn(*(batch or (4,)), *p.shape, dtype=D64)
        torch.testing.assert_close(dist.log_prob(z), p.log_prob(z, c))
        assert dist.mean.dtype == D64


def test_closed_form_kl_between_prior_distributions_matches_monte_carlo():
    """``kl_divergence(q, p)`` between a free and a conditional diag_gaussian (and against the
    standard normal) equals ``E_q[log q(z) - log p(z)]`` estimated from 20000 draws, within 5
    standard errors."""
    q = prior("diag_gaussian", (3,))
    with torch.no_grad():
        q.mean.copy_(torch.tensor([0.5, -1.0, 0.2]))
        q.log_scale.copy_(torch.tensor([-0.3, 0.4, 0.0]))
    conditional = prior("diag_gaussian", (3,), context_shape=(2,))
    c = torch.randn(4, 2, dtype=D64)
    for p, ctx in [(prior("standard_normal", (3,)), None), (conditional, c)]:
        p_dist, q_dist = p.distribution(ctx), q.distribution()
        kl = kl_divergence(q_dist, p_dist)
        assert kl.shape == p_dist.batch_shape
        torch.manual_seed(0)
        x = q_dist.sample((20_000, *p_dist.batch_shape))
        terms = q.log_prob(x) - p.log_prob(x, None if ctx is None else ctx.expand(20_000, *ctx.shape))
        se = terms.std(0) / 20_000**0.5
        assert ((terms.mean(0) - kl).abs() <= 5 * se).all(), (terms.mean(0), kl, se)
        assert (kl > 0).all()


def test_distribution_checks_the_context():
    with pytest.raises(ShapeError, match="is unconditional but received a context"):
        prior("standard_normal", (2,)).distribution(torch.zeros(3, 2, dtype=D64))
    with pytest.raises(ShapeError, match="needs a context"):
        prior("diag_gaussian", (2,), context_shape=(3,)).distribution()
