"""gmm_lowrank against independent dense references (float64): densities, gradients, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

from eddies.core import RecipeError, ShapeError, build, validate_spec
from eddies.priors import LowRankPrecisionMixture
from eddies.priors.gmm_lowrank import LowRankTerms

D64 = torch.float64


def random_mixture(n: int, K: int, d: int, r: int, shared: bool, seed: int) -> LowRankPrecisionMixture:
    g = torch.Generator().manual_seed(seed)
    lead = 1 if shared else n

    def rnd(*s):
        return torch.randn(lead, *s, generator=g, dtype=D64)

    return LowRankPrecisionMixture(
        logits=rnd(K), means=rnd(K, d), diag=0.2 + rnd(K, d).exp(), factor=rnd(K, d, r)
    )


def dense_reference(m: LowRankPrecisionMixture, n: int) -> MixtureSameFamily:
    """The same mixture with dense precision matrices D + U U^T (torch.distributions)."""
    K, d = m.means.shape[-2:]
    precision = torch.diag_embed(m.diag) + m.factor @ m.factor.transpose(-1, -2)
    comps = MultivariateNormal(m.means.expand(n, K, d), precision_matrix=precision.expand(n, K, d, d))
    return MixtureSameFamily(Categorical(logits=m.logits.expand(n, K)), comps)


@given(
    K=st.integers(1, 4), d=st.integers(1, 6), r=st.integers(0, 3), n=st.integers(1, 5),
    shared=st.booleans(), seed=st.integers(0, 10_000),
)
def test_log_prob_and_gradients_match_dense_reference(K, d, r, n, shared, seed):
    m = random_mixture(n, K, d, r, shared, seed)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed + 1), dtype=D64)
    leaves = [z, m.logits, m.means, m.diag, m.factor]
    for t in leaves:
        t.requires_grad_(True)
    ours = m.log_prob(z)
    ref = dense_reference(m, n).log_prob(z)
    assert ours.shape == (n,)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    g_ours = torch.autograd.grad(ours.sum(), leaves, allow_unused=True, materialize_grads=True)
    g_ref = torch.autograd.grad(ref.sum(), leaves, allow_unused=True, materialize_grads=True)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


@given(K=st.integers(1, 4), d=st.integers(1, 5), n=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_rank_zero_is_the_diagonal_mixture(K, d, n, seed):
    m = random_mixture(n, K, d, 0, False, seed)
    z = torch.randn(n, d, dtype=D64)
    comps = Independent(Normal(m.means, m.diag.rsqrt()), 1)
    ref = MixtureSameFamily(Categorical(logits=m.logits), comps).log_prob(z)
    torch.testing.assert_close(m.log_prob(z), ref, rtol=1e-10, atol=1e-10)



@pytest.mark.parametrize("r", [1, 2, 3])
def test_low_rank_terms_pass_gradcheck(r):
    """The hand-written backward of the closed forms (r <= 3), float64 finite differences."""
    g = torch.Generator().manual_seed(r)
    delta = torch.randn(3, 2, 4, generator=g, dtype=D64).requires_grad_()
    diag = (0.3 + torch.rand(3, 2, 4, generator=g, dtype=D64)).requires_grad_()
    factor = torch.randn(3, 2, 4, r, generator=g, dtype=D64).requires_grad_()
    assert torch.autograd.gradcheck(LowRankTerms.apply, (delta, diag, factor))


@pytest.mark.parametrize("r", [1, 2, 3, 4])
@pytest.mark.parametrize("shared_factor", [False, True])
def test_per_row_closed_forms_match_dense_reference(r, shared_factor):
    """Per-row D with per-row or shared U (r = 4 takes the batched-Cholesky path), including
    nearly collinear columns of U and a large U against a small D (an ill-conditioned C)."""
    n, K, d = 6, 3, 5
    m = random_mixture(n, K, d, r, False, seed=10 * r + shared_factor)
    m.factor = m.factor.clone()
    m.factor[0, 0] = m.factor[0, 0, :, :1] * (1 + 1e-6 * torch.arange(r, dtype=D64))
    m.factor[1, 1] *= 30.0
    if shared_factor:
        m.factor = m.factor[:1]
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(r), dtype=D64)
    leaves = [z, m.means, m.diag, m.factor]
    for t in leaves:
        t.requires_grad_(True)
    ours, ref = m.log_prob(z), dense_reference(m, n).log_prob(z)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    for a, b in zip(torch.autograd.grad(ours.sum(), leaves), torch.autograd.grad(ref.sum(), leaves), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    assert torch.autograd.gradcheck(lambda *t: LowRankPrecisionMixture(m.logits, *t[1:]).log_prob(t[0]), leaves)


def mixture_moments(m: LowRankPrecisionMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic mean and covariance of a shared (leading axis 1) mixture."""
    alpha = m.logits[0].softmax(-1)
    mu = m.means[0]
    cov_k = torch.linalg.inv(torch.diag_embed(m.diag[0]) + m.factor[0] @ m.factor[0].transpose(-1, -2))
    mean = alpha @ mu
    second = (alpha[:, None, None] * (cov_k + mu[:, :, None] * mu[:, None, :])).sum(0)
    return mean, second - torch.outer(mean, mean)


def assert_moments(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, k: float = 5.0) -> None:
    """Empirical mean/covariance within ``k`` standard errors estimated from the sample itself."""
    n = x.shape[0]
    c = x - x.mean(0)
    se_mean = c.std(0) / math.sqrt(n)
    assert ((x.mean(0) - mean).abs() <= k * se_mean).all(), (x.mean(0), mean)
    prods = c[:, :, None] * c[:, None, :]
    se_cov = prods.std(0) / math.sqrt(n)
    assert ((prods.mean(0) - cov).abs() <= k * se_cov + 1e-12).all(), (prods.mean(0), cov)


@pytest.mark.parametrize("K,d,r", [(1, 4, 2), (3, 2, 1), (2, 3, 0), (2, 5, 3)])
def test_samples_match_analytic_moments(K, d, r):
    torch.manual_seed(0)
    m = random_mixture(1, K, d, r, True, seed=K * 100 + d * 10 + r)
    x = m.sample(40_000)
    mean, cov = mixture_moments(m)
    assert_moments(x, mean, cov)


def test_temperature_scales_the_component_spread():
    """At temperature T each component's covariance is T^2 Lambda_k^{-1}; weights are untempered."""
    torch.manual_seed(1)
    m = random_mixture(1, 1, 3, 2, True, seed=7)
    mean, cov = mixture_moments(m)
    for t in (0.5, 2.0):
        assert_moments(m.sample(40_000, temperature=t), mean, t**2 * cov)


def test_temperature_zero_returns_the_mean_of_the_most_probable_component():
    m = random_mixture(3, 4, 2, 1, False, seed=3)
    m.logits = torch.tensor([[0.0, 3.0, 1.0, 0.0], [5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1]], dtype=D64)
    z = m.sample(3, temperature=0.0)
    expected = torch.stack([m.means[0, 1], m.means[1, 0], m.means[2, 3]])
    torch.testing.assert_close(z, expected)


def test_sampling_follows_each_rows_parameters():
    """With per-row parameters, row i is drawn from mixture i (checked on rows far apart)."""
    torch.manual_seed(2)
    m = LowRankPrecisionMixture(
        logits=torch.zeros(2, 1, dtype=D64),
        means=torch.tensor([[[-50.0, 0.0]], [[50.0, 10.0]]], dtype=D64),
        diag=torch.ones(2, 1, 2, dtype=D64),
        factor=torch.zeros(2, 1, 2, 1, dtype=D64),
    )
    x = torch.stack([m.sample(2) for _ in range(200)])
    torch.testing.assert_close(x.mean(0), m.means[:, 0], atol=0.35, rtol=0)


# ---------------------------------------------------------------------------------------------
# The registered component


def gmm(**kw):
    shape = kw.pop("shape", (3,))
    context_shape = kw.pop("context_shape", None)
    return build({"type": "gmm_lowrank", **kw}, "priors", shape=shape, context_shape=context_shape).double()


def test_module_matches_its_mixture_and_dense_reference_with_context():
    torch.manual_seed(0)
    prior = gmm(components=3, rank=2, shape=(2, 2), context_shape=(5,))
    z, h = torch.randn(6, 2, 2, dtype=D64), torch.randn(6, 5, dtype=D64)
    m = prior.mixture(h)
    assert m.means.shape == (6, 3, 4) and m.factor.shape == (6, 3, 4, 2)
    ref = dense_reference(m, 6).log_prob(z.reshape(6, 4))
    torch.testing.assert_close(prior.log_prob(z, h), ref)


def test_leading_axes_flat_and_sequence_layouts_agree():
    torch.manual_seed(0)
    prior = gmm(components=4, rank=1, shape=(3,), context_shape=(5,))
    z, h = torch.randn(2, 7, 3, dtype=D64), torch.randn(2, 7, 5, dtype=D64)
    seq = prior.log_prob(z, h)
    flat = prior.log_prob(z.reshape(14, 3), h.reshape(14, 5))
    assert seq.shape == (2, 7)
    torch.testing.assert_close(seq.reshape(14), flat)
    assert prior.sample(context=h).shape == (2, 7, 3)


def test_free_factor_with_context_and_parameter_counts():
    K, d, r, H = 3, 4, 2, 5
    shared = gmm(components=K, rank=r, shape=(d,), context_shape=(H,), u_from_context=False)
    per_ctx = gmm(components=K, rank=r, shape=(d,), context_shape=(H,))
    free = gmm(components=K, rank=r, shape=(d,))
    count = lambda p: sum(t.numel() for t in p.parameters())  # noqa: E731
    assert count(shared) == (H + 1) * (K + 2 * K * d) + K * d * r
    assert count(per_ctx) == (H + 1) * (K + 2 * K * d + K * d * r)
    assert count(free) == K + 2 * K * d + K * d * r
    h = torch.randn(3, H, dtype=D64)
    assert shared.mixture(h).factor.shape == (1, K, d, r)


def test_positivity_floor_and_clamp():
    prior = gmm(components=2, rank=1, min_precision=0.01, clamp=(0.1, 1.9))
    with torch.no_grad():
        prior.raw_diag.copy_(torch.tensor([[[-100.0, 0.0, 100.0], [-1.0, 1.0, 0.0]]]))
    diag = prior.mixture().diag
    assert diag.min() >= 0.1 and diag.max() <= 1.9
    torch.testing.assert_close(diag[0, 0, 1], torch.tensor(1.0, dtype=D64))
    for positivity in ("softplus", "exp"):
        p = gmm(components=2, positivity=positivity, min_precision=0.01)
        with torch.no_grad():
            p.raw_diag.fill_(-1000.0)
        torch.testing.assert_close(p.mixture().diag, torch.full_like(p.mixture().diag, 0.01))
        with torch.no_grad():
            p.raw_diag.zero_()
        torch.testing.assert_close(p.mixture().diag, torch.ones_like(p.mixture().diag))


def test_head_spec_is_built_with_context_and_parameter_shapes():
    pytest.importorskip("eddies.conditioners")
    prior = gmm(components=2, rank=1, shape=(3,), context_shape=(4,),
                head={"type": "mlp", "hidden": [8], "activation": "tanh"})
    assert prior.head.net.requested_out_shape == (2 + 2 * 6 + 6,)
    z, h = torch.randn(5, 3, dtype=D64), torch.randn(5, 4, dtype=D64)
    torch.testing.assert_close(prior.log_prob(z, h), dense_reference(prior.mixture(h), 5).log_prob(z))


def test_config_errors_name_the_key():
    with pytest.raises(RecipeError, match="clamp"):
        validate_spec({"type": "gmm_lowrank", "clamp": [2.0, 1.0]}, "priors")
    with pytest.raises(RecipeError, match="rank"):
        validate_spec({"type": "gmm_lowrank", "rank": -1}, "priors")
    with pytest.raises(RecipeError, match="components"):
        validate_spec({"type": "gmm_lowrank", "component": 3}, "priors")


def test_shape_errors_name_expected_and_given_shapes():
    prior = gmm(components=2, shape=(3,), context_shape=(4,))
    with pytest.raises(ShapeError, match=r"GMMLowRankPrecision: z must have shape \(\*batch, 3\), got \(5, 2\)"):
        prior.log_prob(torch.randn(5, 2, dtype=D64), torch.randn(5, 4, dtype=D64))
    with pytest.raises(ShapeError, match="context batch axes"):
        prior.log_prob(torch.randn(5, 3, dtype=D64), torch.randn(4, 4, dtype=D64))
    with pytest.raises(ShapeError, match="needs a context"):
        prior.log_prob(torch.randn(5, 3, dtype=D64))
    with pytest.raises(ShapeError, match="n=3 does not match"):
        prior.sample(3, context=torch.randn(4, 4, dtype=D64))
    with pytest.raises(ValueError, match="temperature"):
        gmm().sample(2, temperature=-1.0)


def test_trains_towards_a_two_cluster_target():
    """A few Adam steps raise the likelihood of data from two separated clusters (smoke + sign)."""
    torch.manual_seed(0)
    prior = gmm(components=2, rank=1, shape=(2,)).float()
    data = torch.cat([torch.randn(128, 2) * 0.3 + 3.0, torch.randn(128, 2) * 0.3 - 3.0])
    opt = torch.optim.Adam(prior.parameters(), lr=0.1)
    start = prior.log_prob(data).mean().item()
    for _ in range(200):
        opt.zero_grad()
        loss = -prior.log_prob(data).mean()
        loss.backward()
        opt.step()
    end = prior.log_prob(data).mean().item()
    # The target's own entropy bound: two clusters of std 0.3 in 2-d, log(0.5) + log N(.; 0.3 I).
    best = math.log(0.5) - 2 * math.log(0.3) - math.log(2 * math.pi) - 1.0
    assert end > start + 1.0 and end > best - 0.2, (start, end, best)


@pytest.mark.parametrize(("shape", "context_shape", "u_from_context"),
                         [((3,), None, True), ((2, 2), (4,), True), ((3,), (2, 2), False)])
def test_distribution_is_the_mixture_with_dense_precisions(shape, context_shape, u_from_context):
    """``distribution(context)``: MixtureSameFamily of MultivariateNormal(precision_matrix=D + U U^T),
    reshaped to the event shape; its log_prob is the prior's, its batch shape the context's."""
    torch.manual_seed(0)
    prior = gmm(components=3, rank=2, shape=shape, context_shape=context_shape, u_from_context=u_from_context)
    batch = () if context_shape is None else (2, 3)
    c = None if context_shape is None else torch.randn(*batch, *context_shape, dtype=D64)
    dist = prior.distribution(c)
    assert dist.event_shape == shape and dist.batch_shape == batch
    z = torch.randn(*(batch or (5,)), *shape, dtype=D64)
    torch.testing.assert_close(dist.log_prob(z), prior.log_prob(z, c))
    assert dist.sample((4,)).shape == (4, *batch, *shape)


def test_mixture_kl_has_no_closed_form_but_monte_carlo_works():
    """A mixture's KL has no closed form (kl_divergence raises); the distribution's samples still
    give a Monte Carlo estimate, clearly positive for two differently initialised mixtures."""
    torch.manual_seed(0)
    p, q = gmm(components=2, rank=1, shape=(2,)), gmm(components=2, rank=1, shape=(2,))
    with pytest.raises(NotImplementedError):
        torch.distributions.kl_divergence(q.distribution(), p.distribution())
    x = q.distribution().sample((20_000,))
    terms = q.log_prob(x) - p.log_prob(x)
    assert terms.mean() > 5 * terms.std() / 20_000**0.5
