"""The conformance kit catches broken bijections (test doubles defined here, never registered)."""


import pytest
import torch
from torch import nn

import eddies.flows  # noqa: F401 (registers the layers the one-line test below checks)
from eddies.core import FLOWS, Bijection, ComponentConfig, register, sum_except_batch
from eddies.core.testing import (
    ConformanceError,
    bijection_cases,
    check_bijection_conformance,
    conformance_test,
)
from tests.plugin_without_hypothesis import run_plugin_without_hypothesis

VECTOR = [{"config": {}, "shape": (3,), "context_shape": None}]


class Scale(Bijection):
    """A correct layer: z = x * exp(a) per entry."""

    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape)
        self.a = nn.Parameter(torch.zeros(self.shape))

    def logdet(self, x):
        return sum_except_batch(self.a.expand_as(x))

    def forward(self, x, context=None):
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x * torch.exp(self.a), self.logdet(x)

    def inverse(self, z, context=None):
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return z * torch.exp(-self.a), -self.logdet(z)


class SwallowsContext(Scale):
    """Unconditional, but a context given to it is silently dropped."""

    def forward(self, x, context=None):
        return super().forward(x)

    def inverse(self, z, context=None):
        return super().inverse(z)


class WrongLogdet(Scale):
    def forward(self, x, context=None):
        z, logdet = super().forward(x, context)
        return z, 2 * logdet

    def inverse(self, z, context=None):
        x, logdet = super().inverse(z, context)
        return x, 2 * logdet


class NotInvertible(Scale):
    def inverse(self, z, context=None):
        return z, -self.logdet(z)


class BatchDependent(Bijection):
    """z = x + mean over the batch: invertible per batch, but samples interact."""

    def forward(self, x, context=None):
        self.check(x, self.shape)
        return x + x.mean(dim=0, keepdim=True), x.new_full((x.shape[0],), self.shape[0] * torch.log(
            torch.tensor(2.0)).item() if x.shape[0] == 1 else 0.0)

    def inverse(self, z, context=None):
        self.check(z, self.shape)
        x = z - z.mean(dim=0, keepdim=True) / 2
        return x, -self.forward(x)[1]


class StateOutsideStateDict(Bijection):
    """A random permutation kept as a plain attribute: lost on save/load."""

    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape)
        self.perm = torch.randperm(self.shape[0])

    def forward(self, x, context=None):
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return z[:, torch.argsort(self.perm)], z.new_zeros(z.shape[0])


class UnusedParameter(Scale):
    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape=shape)
        self.unused = nn.Parameter(torch.zeros(2))


class NoShapeCheck(Bijection):
    def forward(self, x, context=None):
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return z, z.new_zeros(z.shape[0])


class IgnoresContext(Scale):
    def __init__(self, *, shape, context_shape=None):
        Bijection.__init__(self, shape, context_shape)
        self.a = nn.Parameter(torch.zeros(self.shape))

    def forward(self, x, context=None):
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        return x * torch.exp(self.a), self.logdet(x)

    def inverse(self, z, context=None):
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        return z * torch.exp(-self.a), -self.logdet(z)


class ReinitialisesAfterLoad(Scale):
    """Data-dependent init with the flag outside the state dict (the ActNorm pitfall)."""

    def __init__(self, *, shape, context_shape=None):
        super().__init__(shape=shape)
        self.initialized = False

    def forward(self, x, context=None):
        if not self.initialized:
            with torch.no_grad():
                self.a.copy_(-torch.log(x.std(dim=0) + 1e-3))
            self.initialized = True
        return super().forward(x, context)


def test_a_correct_layer_passes():
    check_bijection_conformance(Scale, VECTOR)


@pytest.mark.parametrize(
    ("double", "message"),
    [
        (WrongLogdet, "logdet != log|det J|"),
        (NotInvertible, "inverse(forward(x)) != x"),
        (BatchDependent, "batch dependence"),
        (StateOutsideStateDict, "save/load"),
        (ReinitialisesAfterLoad, "save/load"),
        (UnusedParameter, "parameter 'unused' received no gradient"),
        (NoShapeCheck, "did not raise ShapeError"),
        (SwallowsContext, "a context given to an unconditional layer did not raise ShapeError"),
    ],
)
def test_the_kit_catches(double, message):
    with pytest.raises(ConformanceError, match=message.replace("|", r"\|").replace("(", r"\(").replace(")", r"\)")) as err:
        check_bijection_conformance(double, VECTOR)
    assert double.__name__ in str(err.value)


def test_the_kit_catches_a_layer_ignoring_its_context():
    with pytest.raises(ConformanceError, match="does not change with the context"):
        check_bijection_conformance(IgnoresContext, [{"config": {}, "shape": (2,), "context_shape": (3,)}])


def test_the_logdet_check_names_both_values():
    with pytest.raises(ConformanceError, match=r"layer says -?\d.*autograd Jacobian gives -?\d"):
        check_bijection_conformance(WrongLogdet, VECTOR)


def test_a_registered_layer_without_examples_is_a_failing_case_not_a_skip():
    with FLOWS.scoped():
        register("flows", "no_examples", config=ComponentConfig, summary="test double")(Scale)
        cases = bijection_cases(["no_examples"])
        assert [c.id for c in cases] == ["flows/no_examples@1"]
        with pytest.raises(ConformanceError, match="declares no conformance examples"):
            cases[0].check()
    assert "no_examples" not in FLOWS


def test_every_registered_flow_yields_cases():
    ids = [case.id for case in bijection_cases()]
    for name in ("actnorm", "affine_coupling", "multiscale", "cond_invconv1x1", "maf"):
        assert f"flows/{name}@1[0]" in ids


# The one line a third party writes (here over two first-party layers):
test_one_line_generator = conformance_test("reverse", "squeeze")


@pytest.mark.slow
def test_the_pytest_plugin_runs_without_hypothesis(tmp_path):
    stdout = run_plugin_without_hypothesis(tmp_path, """
        import eddies.flows  # noqa: F401

        def test_conforms(bijection_case):
            bijection_case.check()
    """, "--eddies-flows=reverse,actnorm")
    assert "4 passed" in stdout
