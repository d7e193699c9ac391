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
from eddies.core.testing.inputs import draw_inputs

__all__ = [
    "Case", "ConformanceError", "bijection_cases", "cases_for_class", "check_batch_independence",
    "check_bijection_conformance", "check_gradients", "check_invertibility", "check_logdet",
    "check_save_load", "conformance_test", "draw_inputs", "perturb", "run_example",
]
