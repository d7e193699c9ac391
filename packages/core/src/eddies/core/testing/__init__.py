"""The conformance kit: checks that a bijection honours the contract, shipped for plug-in authors.

Every registered bijection declares small examples at registration; the kit builds each, draws
inputs (Hypothesis, when installed, draws the seeds and batch sizes) and checks, in float64,
invertibility, the log-det against the autograd Jacobian, batch independence, gradients,
safetensors save/load, dtype and shape errors, and context dependence (docs/conformance.md).

One line in a third party's tests::

    from eddies.core.testing import conformance_test
    test_my_layers = conformance_test("my_layer")

or directly: ``check_bijection_conformance("my_layer")``. The pytest plugin (entry point
``pytest11``) also parametrises any test taking a ``bijection_case`` argument over every
registered bijection.

Conditioners have their own kit (:mod:`eddies.core.testing.conditioners`: declared output
shape, batch independence, gradients, save/load, for sequence conditioners causality and step
API equal to teacher forcing, declared autoregressive orderings), with the same one-line use::

    from eddies.core.testing import conditioner_conformance_test
    test_my_net = conditioner_conformance_test("my_net")

and a ``conditioner_case`` argument parametrised by the plugin.

Priors have theirs too (:mod:`eddies.core.testing.priors`: log_prob shape and finiteness, batch
independence, sample shapes, temperature 0, shape errors, save/load, ``distribution()``
consistency, temporal causality, gradients, and normalisation and sample moments by quadrature
in 1-2 dimensions)::

    from eddies.core.testing import prior_conformance_test
    test_my_prior = prior_conformance_test("my_prior")

and a ``prior_case`` argument parametrised by the plugin.
"""

from eddies.core.testing.cases import (
    Case,
    bijection_cases,
    cases_for_class,
    check_bijection_conformance,
    conformance_test,
)
from eddies.core.testing.checks import (
    ConformanceError,
    check_batch_independence,
    check_gradients,
    check_invertibility,
    check_logdet,
    check_save_load,
    perturb,
    run_example,
)
from eddies.core.testing.conditioners import (
    ConditionerCase,
    check_conditioner_conformance,
    conditioner_cases,
    conditioner_cases_for_class,
    conditioner_conformance_test,
    run_conditioner_example,
)
from eddies.core.testing.inputs import draw_inputs
from eddies.core.testing.priors import (
    PriorCase,
    check_prior_conformance,
    prior_cases,
    prior_cases_for_class,
    prior_conformance_test,
    run_prior_example,
)

__all__ = [
    "Case", "ConformanceError", "bijection_cases", "cases_for_class", "check_batch_independence",
    "check_bijection_conformance", "check_gradients", "check_invertibility", "check_logdet",
    "check_save_load", "conformance_test", "draw_inputs", "perturb", "run_example",
    "ConditionerCase", "check_conditioner_conformance", "conditioner_cases", "conditioner_cases_for_class",
    "conditioner_conformance_test", "run_conditioner_example",
    "PriorCase", "check_prior_conformance", "prior_cases", "prior_cases_for_class", "prior_conformance_test",
    "run_prior_example",
]
