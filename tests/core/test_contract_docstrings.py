"""Each contract is written in its base class's docstring, with its sign and shape rules (issue 10)."""

from __future__ import annotations

import doctest
import inspect

import pytest

import eddies.core.conditioner
from eddies.core import Bijection, Conditioner, Model, Prior, SequenceConditioner, Task, TemporalPrior

# phrases that carry the sign and shape rules of each contract
RULES = {
    Bijection: ["log|det ∂z/∂x|", "(batch,)", "minus the forward log-determinant", "event* shapes",
                "ShapeError", "never ignored"],
    Conditioner: ["(*batch, *in_shape)", "(*batch, *output_shape())", "batch independence",
                  "honoured exactly"],
    SequenceConditioner: ["initial_state(batch, device=None, dtype=None)", "step(x_t, state)",
                          "(B, T, *in_shape)", "(causal)", "returns one tuple"],
    Prior: ["(*batch, *shape)", "natural log", "if and only if", "temperature 0", "kl_divergence",
            "event_shape"],
    TemporalPrior: ["(batch, T, *shape)", "log p(z_t | z_<t, context)", "never on", "history"],
    Model: ["val_nll", "(N, B, *target)", "prefix", "horizon", "set_progress", "encoder",
            "reaches no", "RecipeError"],
    Task: ["data_spec().shapes", "no batch axis", "``\"min\"``", "``\"max\"``", "val_<name>",
           "task_eval_every"],
}


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
def test_the_contract_is_in_the_base_class_docstring(cls):
    doc = " ".join(inspect.getdoc(cls).split())
    missing = [phrase for phrase in RULES[cls] if " ".join(phrase.split()) not in doc]
    assert not missing, f"{cls.__name__}'s docstring does not state {missing}"


def test_the_sequence_conditioner_example_runs():
    result = doctest.testmod(eddies.core.conditioner)
    assert result.attempted > 0 and result.failed == 0
