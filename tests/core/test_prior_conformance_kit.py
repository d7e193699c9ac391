"""The prior conformance kit catches broken priors (test doubles defined here, never registered)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

import eddies.priors  # noqa: F401 (registers the priors the one-line test below checks)
from eddies.core import Prior, TemporalPrior
from eddies.core.shapes import batch_axes, check_context
from eddies.core.testing import (
    ConformanceError,
    check_prior_conformance,
    prior_cases,
    prior_cases_for_class,
    prior_conformance_test,
)
from tests.plugin_without_hypothesis import run_plugin_without_hypothesis

LOG_2PI = math.log(2 * math.pi)
VECTOR = [{"config": {}, "shape": (2,), "context_shape": None}, {"config": {}, "shape": (1,), "context_shape": None}]
CONDITIONAL = [{"config": {}, "shape": (2,), "context_shape": (3,)}]
SEQUENCE = [{"config": {}, "shape": (1,), "context_shape": None, "steps": 2}]


def normal_log_prob(z, mean, event_dims):
    return (-0.5 * (z - mean) ** 2 - 0.5 * LOG_2PI).sum(dim=tuple(range(-event_dims, 0)))


class ShiftedNormal(Prior):
    """A correct prior: N(mu, I) with a learned mu, or mu = W c with a context."""

    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape, context_shape)
        self.mu = nn.Parameter(torch.zeros(self.shape))
        if self.context_shape is not None:
            self.proj = nn.Linear(math.prod(self.context_shape), math.prod(self.shape))

    def mean(self, context):
        if context is None:
            return self.mu
        batch = context.shape[: context.dim() - len(self.context_shape)]
        return self.mu + self.proj(context.reshape(*batch, -1)).reshape(*batch, *self.shape)

    def log_prob(self, z, context=None):
        check_context(self, context, self.context_shape, batch_axes(self, z, self.shape, "z"))
        return normal_log_prob(z, self.mean(context), len(self.shape))

    def sample(self, n=None, context=None, temperature=1.0):
        batch = check_context(self, context, self.context_shape) or (n,)
        mean = self.mean(context).expand(*batch, *self.shape)
        return mean + temperature * torch.randn_like(mean)

    def distribution(self, context=None):
        check_context(self, context, self.context_shape)
        mean = self.mean(context)
        return Independent(Normal(mean, torch.ones_like(mean)), len(self.shape))


class Unnormalised(ShiftedNormal):
    def log_prob(self, z, context=None):
        return super().log_prob(z, context) + 0.3

    def distribution(self, context=None):  # (a distribution would expose it first)
        raise NotImplementedError


class BatchDependent(ShiftedNormal):
    """Centres z on the mean of its batch: fine row by row, wrong as soon as rows meet."""

    def log_prob(self, z, context=None):
        batch = batch_axes(self, z, self.shape, "z")
        flat = z.reshape(-1, *self.shape)
        centred = (flat - flat.mean(0) + self.mu if flat.shape[0] > 1 else flat).reshape(*batch, *self.shape)
        return super().log_prob(centred, context)


class WrongSampler(ShiftedNormal):
    def sample(self, n=None, context=None, temperature=1.0):
        return self.mu + 2 * (super().sample(n, context, temperature) - self.mu)


class NoisyMode(ShiftedNormal):
    def sample(self, n=None, context=None, temperature=1.0):
        return super().sample(n, context, max(temperature, 0.1))


class WrongDistribution(ShiftedNormal):
    def distribution(self, context=None):
        mean = self.mean(context) + 1.0
        return Independent(Normal(mean, torch.ones_like(mean)), len(self.shape))


class StateOutsideStateDict(ShiftedNormal):
    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape=shape, context_shape=context_shape)
        self.offset = torch.randn(self.shape)  # a plain attribute: lost on save/load

    def log_prob(self, z, context=None):
        batch_axes(self, z, self.shape, "z")
        return super().log_prob(z - self.offset.to(z.dtype), context)

    def sample(self, n=None, context=None, temperature=1.0):
        x = super().sample(n, context, temperature)
        return x + self.offset.to(x.dtype)


class IgnoresContext(ShiftedNormal):
    """Accepts a context it was not built for and silently ignores it."""

    def log_prob(self, z, context=None):
        return super().log_prob(z, None)


class UnusedParameter(ShiftedNormal):
    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape=shape, context_shape=context_shape)
        self.unused = nn.Parameter(torch.zeros(2))


class AR1(TemporalPrior):
    """A correct temporal prior: z_t ~ N(a z_{t-1}, I) with z_0 = 0."""

    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape, context_shape)
        self.a = nn.Parameter(torch.tensor(0.5))

    def means(self, z):
        return self.a * torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)

    def log_prob_steps(self, z, context=None):
        lead = batch_axes(self, z, self.shape, "z")
        if len(lead) != 2:
            raise ShapeError_(self, z)
        check_context(self, context, self.context_shape, lead[:1])
        return normal_log_prob(z, self.means(z), len(self.shape))

    def sample(self, n=None, context=None, temperature=1.0, steps=1, history=None):
        prev = self.a.new_zeros(n if history is None else history.shape[0], *self.shape)
        if history is not None:
            prev = history[:, -1]
        out = []
        for _ in range(steps):
            prev = self.a * prev + temperature * torch.randn_like(prev)
            out.append(prev)
        return torch.stack(out, 1)


def ShapeError_(prior, z):  # noqa: N802 (reads like the exception it builds)
    from eddies.core import ShapeError

    return ShapeError(f"{type(prior).__name__}: z must be (batch, T, *shape), got {tuple(z.shape)}")


class Acausal(AR1):
    """Term t is scored around z_{t+1}: a valid density of the whole sequence, but step t peeks ahead."""

    def means(self, z):
        return self.a * torch.cat([z[:, 1:], torch.zeros_like(z[:, :1])], dim=1)


def test_correct_priors_pass():
    check_prior_conformance(ShiftedNormal, VECTOR + CONDITIONAL)
    check_prior_conformance(AR1, SEQUENCE + [{"config": {}, "shape": (2, 2), "context_shape": None, "steps": 3}])


@pytest.mark.parametrize(
    ("double", "examples", "message"),
    [
        (Unnormalised, VECTOR, "normalisation: the density integrates to 1.3"),
        (BatchDependent, VECTOR, "batch dependence"),
        (WrongSampler, VECTOR, "sample moments"),
        (NoisyMode, VECTOR, "temperature 0"),
        (WrongDistribution, CONDITIONAL, "distribution.*differs from the prior's log-density"),
        (StateOutsideStateDict, VECTOR, "save/load"),
        (IgnoresContext, VECTOR, "a context given to an unconditional prior did not raise ShapeError"),
        (UnusedParameter, VECTOR, "parameter 'unused' received no gradient"),
        (Acausal, SEQUENCE, r"causality: log_prob_steps\[:, 0\] depends on z_1"),
    ],
)
def test_the_kit_catches(double, examples, message):
    with pytest.raises(ConformanceError, match=message) as err:
        check_prior_conformance(double, examples)
    assert double.__name__ in str(err.value)


def test_a_prior_without_examples_is_a_failing_case_not_a_skip():
    (case,) = prior_cases_for_class(ShiftedNormal, [], name="priors/no_examples@1")
    with pytest.raises(ConformanceError, match="declares no conformance examples"):
        case.check()


def test_every_registered_prior_yields_cases():
    ids = [case.id for case in prior_cases()]
    for name in ("standard_normal", "diag_gaussian", "gmm_lowrank", "residual_latent", "euler_state"):
        assert f"priors/{name}@1[0]" in ids


def test_examples_can_replace_the_declared_ones():
    (case,) = prior_cases(["diag_gaussian"], examples=[{"config": {}, "shape": (1,), "context_shape": (2,)}])
    assert case.id == "priors/diag_gaussian@1[0]" and case.example["context_shape"] == (2,)
    case.check()


# The one line a plug-in author writes (here over two first-party priors):
test_one_line_generator = prior_conformance_test("standard_normal", "euler_state")


def test_the_one_line_generator_is_parametrised_over_the_named_priors():
    (mark,) = [m for m in test_one_line_generator.pytestmark if m.name == "parametrize"]
    ids = [case.id for case in mark.args[1]]
    assert ids[0] == "priors/standard_normal@1[0]" and any(i.startswith("priors/euler_state@1[") for i in ids)
    assert all(i.startswith(("priors/standard_normal", "priors/euler_state")) for i in ids)


@pytest.mark.slow
def test_the_pytest_plugin_parametrises_prior_case_without_hypothesis(tmp_path):
    stdout = run_plugin_without_hypothesis(tmp_path, """
        def test_conforms(prior_case):
            prior_case.check()
    """, "--eddies-priors=standard_normal")
    assert "3 passed" in stdout
