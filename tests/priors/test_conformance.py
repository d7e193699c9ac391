"""Conformance of every registered prior, driven by the ``examples`` each declares at registration.

Each example is ``{"config": fields, "shape": event shape, "context_shape": tuple or None}``
(temporal priors may add ``"steps"``). For every example: ``log_prob`` has the batch shape and is
finite; a row's density does not depend on the rest of its batch; samples have the right shape,
temperature 0 is deterministic; a safetensors round trip of the state reproduces the density; and
where the event has 1-2 dimensions, the density integrates to one by quadrature and the empirical
mean and covariance of many samples match the quadrature moments.
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from eddies.core import PRIORS, TemporalPrior, build

D64 = torch.float64

CASES = [
    pytest.param(entry, example, id=f"{entry.ref}-{i}")
    for entry in PRIORS.entries()
    for i, example in enumerate(entry.meta.get("examples", []))
]


def test_every_prior_declares_examples():
    missing = [e.ref for e in PRIORS.entries() if not e.meta.get("examples")]
    assert not missing, f"priors without conformance examples: {missing}"


def make(entry, example, seed=0):
    torch.manual_seed(seed)
    prior = build(
        {"type": entry.ref, **example["config"]}, "priors",
        shape=tuple(example["shape"]), context_shape=example["context_shape"],
    )
    return prior.double().eval()


def event(prior, example):
    """Shape of one draw without the batch: ``(steps, *shape)`` for temporal priors."""
    steps = (example.get("steps", 3),) if isinstance(prior, TemporalPrior) else ()
    return (*steps, *prior.shape)


def inputs(prior, example, batch, seed=1):
    """``z`` of shape (*batch, [steps,] *shape) and the context (*batch, *context_shape) or None
    (a temporal prior's context is per sequence)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(*batch, *event(prior, example), generator=g, dtype=D64)
    c = None
    if prior.context_shape is not None:
        c = torch.randn(*batch, *prior.context_shape, generator=g, dtype=D64)
    return z, c


def draw(prior, example, n, context, temperature=1.0):
    if isinstance(prior, TemporalPrior):
        return prior.sample(n, context=context, temperature=temperature, steps=example.get("steps", 3))
    return prior.sample(n if context is None else None, context=context, temperature=temperature)


@pytest.mark.parametrize("entry,example", CASES)
def test_shapes_batch_independence_and_state_round_trip(entry, example, tmp_path):
    prior = make(entry, example)
    batch = (4,) if isinstance(prior, TemporalPrior) else (2, 3)
    z, c = inputs(prior, example, batch)
    lp = prior.log_prob(z, c)
    assert lp.shape == batch and lp.dtype == D64 and torch.isfinite(lp).all()
    flat_z = z.reshape(-1, *z.shape[len(batch) :])
    flat_c = None if c is None else c.reshape(-1, *c.shape[len(batch) :])[1:2]
    one = prior.log_prob(flat_z[1:2], flat_c)
    torch.testing.assert_close(one, lp.reshape(-1)[1:2])

    save_file({k: v.contiguous() for k, v in prior.state_dict().items()}, tmp_path / "prior.safetensors")
    other = make(entry, example, seed=123)
    other.load_state_dict(load_file(tmp_path / "prior.safetensors"))
    torch.testing.assert_close(other.log_prob(z, c), lp)


@pytest.mark.parametrize("entry,example", CASES)
def test_sample_shapes_and_temperature_zero_is_deterministic(entry, example):
    prior = make(entry, example)
    _, c = inputs(prior, example, (5,))
    x = draw(prior, example, 5, c)
    assert x.shape == (5, *event(prior, example)) and x.dtype == D64 and torch.isfinite(x).all()
    torch.testing.assert_close(draw(prior, example, 5, c, 0.0), draw(prior, example, 5, c, 0.0))
    assert not torch.equal(draw(prior, example, 5, c), draw(prior, example, 5, c))




@pytest.mark.parametrize("entry,example", CASES)
def test_density_integrates_to_one_and_matches_sample_moments(entry, example):
    """Float32 evaluation (float64 convolutions are very slow on CPU), float64 sums."""
    prior = make(entry, example).float()
    if math.prod(event(prior, example)) > 2:
        pytest.skip("quadrature only for events of 1-2 dimensions")
    torch.manual_seed(0)
    n = 40_000
    _, c = inputs(prior, example, (1,))
    c = None if c is None else c.float()
    with torch.no_grad():
        x = draw(prior, example, n, None if c is None else c.expand(n, *c.shape[1:])).reshape(n, -1).double()
    dim = x.shape[1]
    spread = x.std(0)
    lo, hi = x.min(0).values - 6 * spread, x.max(0).values + 6 * spread
    points = 4001 if dim == 1 else 301
    axes = [torch.linspace(float(a), float(b), points, dtype=D64) for a, b in zip(lo, hi, strict=True)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)
    cell = math.prod(float(a[1] - a[0]) for a in axes)
    c_grid = None if c is None else c.expand(grid.shape[0], *c.shape[1:])
    with torch.no_grad():
        p = prior.log_prob(grid.float().reshape(-1, *event(prior, example)), c_grid).double().exp()
    mass = float(p.sum() * cell)
    assert abs(mass - 1.0) < 2e-3, f"{entry.ref} integrates to {mass}"

    w = p / p.sum()
    mean = w @ grid
    cov = (w[:, None] * (grid - mean)).T @ (grid - mean)
    centred = x - x.mean(0)
    se_mean = centred.std(0) / math.sqrt(n)
    assert ((x.mean(0) - mean).abs() <= 5 * se_mean).all(), (x.mean(0), mean)
    prods = centred[:, :, None] * centred[:, None, :]
    se_cov = prods.std(0) / math.sqrt(n)
    assert ((prods.mean(0) - cov).abs() <= 5 * se_cov).all(), (prods.mean(0), cov)
