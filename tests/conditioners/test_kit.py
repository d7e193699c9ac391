"""The conditioner conformance kit catches broken conditioners (doubles defined here, never registered)."""

import re

import pytest
import torch
from torch import nn

from eddies.core import CONDITIONERS, ComponentConfig, Conditioner, SequenceConditioner, ShapeError, register
from eddies.core.shapes import batch_axes
from eddies.core.testing import (
    ConformanceError,
    check_conditioner_conformance,
    conditioner_cases,
    conditioner_conformance_test,
)
from tests.plugin_without_hypothesis import run_plugin_without_hypothesis

VECTOR = [{"config": {}, "in_shape": (3,), "out_shape": None, "batch": (2, 2)}]
SEQUENCE = [{"config": {}, "in_shape": (2,), "out_shape": None, "batch": (2, 3)}]
IMAGE_SEQUENCE = [{"config": {}, "in_shape": (1, 2, 3), "out_shape": None, "batch": (2, 3)}]


class Affine(Conditioner):
    """A correct conditioner: y = tanh(W x + b) on the last axis."""

    def __init__(self, *, in_shape, out_shape=None):
        super().__init__(in_shape, out_shape)
        self.linear = nn.Linear(self.in_shape[0], (out_shape or self.in_shape)[0])

    def output_shape(self):
        return (self.linear.out_features,)

    def forward(self, x):
        batch_axes(self, x, self.in_shape)
        return torch.tanh(self.linear(x))


class Leaky(SequenceConditioner):
    """A correct sequence conditioner: s_t = a * s_{t-1} + W x_t, any per-step shape."""

    def __init__(self, *, in_shape, out_shape=None):
        super().__init__(in_shape, out_shape)
        self.a = nn.Parameter(torch.tensor(0.5))
        self.w = nn.Parameter(torch.ones(self.in_shape))

    def output_shape(self):
        return self.in_shape

    def initial_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, *self.in_shape, **self.state_options(device, dtype))

    def step(self, x, state):
        self.check_step(x)
        state = self.a * state + self.w * x
        return torch.tanh(state), state


class WrongDeclaredShape(Affine):
    def output_shape(self):
        return (self.linear.out_features + 1,)


class IgnoresRequestedShape(Affine):
    def __init__(self, *, in_shape, out_shape=None):
        super().__init__(in_shape=in_shape)


class ListShape(Leaky):
    def output_shape(self):
        return list(self.in_shape)


class BatchMixing(Affine):
    """Adds the batch mean: row i sees every row."""

    def forward(self, x):
        return super().forward(x) + x.mean(dim=0, keepdim=True)


class DetachedBatchMixing(Affine):
    """Mixes rows only outside autograd (as a stale batch statistic would): the perturbation finds it."""

    def forward(self, x):
        return super().forward(x) + x.detach().flatten(0, -2).mean(0)


class MixingOnlyInGradient(Affine):
    """Equal values, but a gradient path across rows: the autograd check finds it."""

    def forward(self, x):
        mean = x.mean(dim=0, keepdim=True)
        return super().forward(x) + (mean - mean.detach())


class Acausal(Leaky):
    """Teacher forcing reads the whole sequence backwards (and step is only ever one step)."""

    def scan(self, inputs, state=None):
        self.check_sequence(inputs)
        out, state = super().scan(inputs.flip(1), state)
        return out.flip(1), state


class StepDiffersFromForward(Leaky):
    """A causal teacher forcing that is not the step API (a forgotten factor)."""

    def scan(self, inputs, state=None):
        out, state = super().scan(inputs, state)
        return 0.5 * out, state


class StateOutsideStateDict(Affine):
    """A random sign kept as a plain attribute: lost on save/load."""

    def __init__(self, *, in_shape, out_shape=None):
        super().__init__(in_shape=in_shape, out_shape=out_shape)
        self.sign = torch.randint(0, 2, self.in_shape) * 2.0 - 1.0

    def forward(self, x):
        batch_axes(self, x, self.in_shape)
        return super().forward(x * self.sign.to(x.dtype))


class UnusedParameter(Affine):
    def __init__(self, *, in_shape, out_shape=None):
        super().__init__(in_shape=in_shape, out_shape=out_shape)
        self.unused = nn.Parameter(torch.zeros(2))


class NoShapeCheck(Affine):
    def forward(self, x):
        return torch.tanh(x[..., : self.in_shape[0]] @ self.linear.weight.T[: self.in_shape[0]])


class StepWithoutShapeCheck(Leaky):
    def step(self, x, state):
        state = self.a * state + self.w * x
        return torch.tanh(state), state


class StateIgnoresDtype(Leaky):
    def initial_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, *self.in_shape, dtype=dtype)  # None: float32, not the parameters' dtype


def test_correct_doubles_pass():
    check_conditioner_conformance(Affine, VECTOR)
    check_conditioner_conformance(Affine, [{**VECTOR[0], "out_shape": (4,)}])
    check_conditioner_conformance(Leaky, SEQUENCE)
    check_conditioner_conformance(Leaky, IMAGE_SEQUENCE)


@pytest.mark.parametrize(
    ("double", "examples", "message"),
    [
        (WrongDeclaredShape, VECTOR, "declared output shape: output_shape() states (4,)"),
        (IgnoresRequestedShape, [{**VECTOR[0], "out_shape": (5,)}], "out_shape=(5,) was requested"),
        (ListShape, SEQUENCE, "a sequence conditioner states one tuple of ints"),
        (BatchMixing, VECTOR, "batch dependence: row 0 of the output changed"),
        (DetachedBatchMixing, VECTOR, "batch dependence: row 0 of the output changed"),
        (MixingOnlyInGradient, VECTOR, "batch dependence: the autograd Jacobian of output row 0"),
        (Acausal, SEQUENCE, "causality: outputs 0..0 changed"),
        (Acausal, IMAGE_SEQUENCE, "causality"),
        (StepDiffersFromForward, SEQUENCE, "step != teacher forcing: step 0"),
        (StateOutsideStateDict, VECTOR, "save/load"),
        (UnusedParameter, VECTOR, "parameter 'unused' received no gradient"),
        (NoShapeCheck, VECTOR, "an input with a wrong event shape did not raise ShapeError"),
        (StepWithoutShapeCheck, SEQUENCE, "step on a sequence (an extra time axis) did not raise ShapeError"),
        (StateIgnoresDtype, SEQUENCE, "initial_state: initial_state(batch) of a torch.float64 conditioner holds [torch.float32]"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_the_kit_catches(double, examples, message):
    with pytest.raises(ConformanceError, match=re.escape(message)) as err:
        check_conditioner_conformance(double, examples)
    assert str(err.value).startswith(double.__name__)


def test_causality_is_also_checked_on_the_jacobian():
    # values unchanged by later inputs, but a gradient path from them: only autograd sees it
    class GradientFromTheFuture(Leaky):
        def scan(self, inputs, state=None):
            out, state = super().scan(inputs, state)
            later = inputs.flip(1).cumsum(1).flip(1).reshape(out.shape)
            return out + (later - later.detach()), state

    with pytest.raises(ConformanceError, match="the autograd Jacobian of output step 0 is non-zero on input step"):
        check_conditioner_conformance(GradientFromTheFuture, SEQUENCE)


def test_a_declared_ordering_is_checked():
    class Neighbours(Conditioner):
        """Each position sees its left neighbour and itself: fine for raster order with mask B only."""

        def __init__(self, *, in_shape, out_shape=None):
            super().__init__(in_shape, out_shape)
            self.w = nn.Parameter(torch.tensor([0.7, 1.3]))

        def output_shape(self):
            return self.in_shape

        def forward(self, x):
            batch_axes(self, x, self.in_shape)
            left = torch.nn.functional.pad(x, (1, 0))[..., :-1]
            return self.w[0] * left + self.w[1] * x

    raster = torch.arange(6).reshape(2, 3).tolist()
    base = {"config": {}, "in_shape": (1, 2, 3), "out_shape": None, "batch": (2,)}
    check_conditioner_conformance(Neighbours, [{**base, "autoregressive": {"ranks": raster, "strict": False}}])
    with pytest.raises(ConformanceError, match=r"output position 0 \(rank 0\) depends on input position 0"):
        check_conditioner_conformance(Neighbours, [{**base, "autoregressive": {"ranks": raster, "strict": True}}])
    backwards = [[5, 4, 3], [2, 1, 0]]
    with pytest.raises(ConformanceError, match="autoregressive: output position 1"):
        check_conditioner_conformance(Neighbours, [{**base, "autoregressive": {"ranks": backwards}}])
    with pytest.raises(ConformanceError, match=r"declared ranks of shape \(3, 2\) do not match"):
        check_conditioner_conformance(Neighbours, [{**base, "autoregressive": {"ranks": [[0, 1]] * 3}}])


def test_bad_examples_are_reported():
    with pytest.raises(ConformanceError, match=r"unknown keys \['shape'\]"):
        check_conditioner_conformance(Affine, [{**VECTOR[0], "shape": (3,)}])
    with pytest.raises(ConformanceError, match=r"declares batch \(B, T\), got \(2,\)"):
        check_conditioner_conformance(Leaky, [{**SEQUENCE[0], "batch": (2,)}])


def test_a_registered_conditioner_without_examples_is_a_failing_case_not_a_skip():
    with CONDITIONERS.scoped():
        register("conditioners", "no_examples", config=ComponentConfig, summary="test double")(Affine)
        cases = conditioner_cases(["no_examples"])
        assert [c.id for c in cases] == ["conditioners/no_examples@1"]
        with pytest.raises(ConformanceError, match="declares no conformance examples"):
            cases[0].check()
    assert "no_examples" not in CONDITIONERS


def test_a_registered_conditioner_is_checked_by_name():
    with CONDITIONERS.scoped():
        register("conditioners", "kit_mixer", config=ComponentConfig, summary="test double",
                 examples=VECTOR)(BatchMixing)
        with pytest.raises(ConformanceError, match=r"^conditioners/kit_mixer@1\[0\]: batch dependence"):
            check_conditioner_conformance("kit_mixer")
    assert "kit_mixer" not in CONDITIONERS


def test_shape_errors_must_name_the_class():
    class Anonymous(Affine):
        def forward(self, x):
            if x.shape[-1] != self.in_shape[0]:
                raise ShapeError("wrong shape")
            return super().forward(x)

    with pytest.raises(ConformanceError, match="raised ShapeError without naming Anonymous"):
        check_conditioner_conformance(Anonymous, VECTOR)


# The one line a third party writes (here over two first-party conditioners):
test_one_line_generator = conditioner_conformance_test("mlp", "gru")


def test_several_outputs_are_checked_head_by_head():
    class TwoHeads(Affine):
        def output_shape(self):
            return {"loc": (self.linear.out_features,), "scale": (1,)}

        def forward(self, x):
            y = super().forward(x)
            return {"loc": y, "scale": y.sum(-1, keepdim=True).exp()}

    class MixedScale(TwoHeads):
        def forward(self, x):
            out = super().forward(x)
            return {**out, "scale": out["scale"] + out["scale"].mean(0)}

    check_conditioner_conformance(TwoHeads, VECTOR)
    with pytest.raises(ConformanceError, match="batch dependence"):
        check_conditioner_conformance(MixedScale, VECTOR)


@pytest.mark.slow
def test_the_pytest_plugin_runs_without_hypothesis(tmp_path):
    stdout = run_plugin_without_hypothesis(tmp_path, """
        def test_conforms(conditioner_case):
            conditioner_case.check()
    """, "--eddies-conditioners=mlp,gru")
    assert "5 passed" in stdout


def test_forward_returning_the_state_too_is_caught():
    class ReturnsState(Leaky):
        def forward(self, inputs, state=None):
            return self.scan(inputs, state)

    with pytest.raises(ConformanceError, match="forward returns a tensor; it returned tuple"):
        check_conditioner_conformance(ReturnsState, SEQUENCE)
