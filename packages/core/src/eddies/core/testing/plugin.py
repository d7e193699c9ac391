"""pytest plugin of the conformance kit (entry point ``pytest11``: ``eddies-conformance``).

Any test function with a ``bijection_case`` argument is parametrised over every registered
bijection's examples (restricted with ``--eddies-flows=name,name``)::

    def test_conformance(bijection_case):
        bijection_case.check()

Likewise a ``conditioner_case`` argument is parametrised over every registered conditioner's
examples (``--eddies-conditioners=name,name``; :mod:`eddies.core.testing.conditioners`).
A ``prior_case`` argument is parametrised over every registered prior's examples
(``--eddies-priors=name,name``; :mod:`eddies.core.testing.priors`).

The plugin imports torch and eddies only when such a test is collected, and needs Hypothesis
only at run time (without it, the kit checks a few fixed seeds).
"""

from __future__ import annotations


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--eddies-flows", default=None,
        help="comma-separated flow names for tests taking bijection_case (default: every registered flow)",
    )
    parser.addoption(
        "--eddies-conditioners", default=None,
        help="comma-separated conditioner names for tests taking conditioner_case (default: every registered one)",
    )
    parser.addoption(
        "--eddies-priors", default=None,
        help="comma-separated prior names for tests taking prior_case (default: every registered prior)",
    )


def _parametrize(metafunc, argname: str, option: str, cases_of) -> None:
    """Parametrise ``argname`` over ``cases_of(names)``, names from the comma-separated ``option``."""
    value = metafunc.config.getoption(option)
    names = [n.strip() for n in value.split(",") if n.strip()] if value else None
    cases = cases_of(names)
    metafunc.parametrize(argname, cases, ids=[c.id for c in cases])


def pytest_generate_tests(metafunc) -> None:
    if "prior_case" in metafunc.fixturenames:
        from eddies.core.testing.priors import prior_cases

        _parametrize(metafunc, "prior_case", "--eddies-priors", prior_cases)
    if "conditioner_case" in metafunc.fixturenames:
        from eddies.core.testing.conditioners import conditioner_cases

        _parametrize(metafunc, "conditioner_case", "--eddies-conditioners", conditioner_cases)
    if "bijection_case" in metafunc.fixturenames:
        from eddies.core.testing.cases import bijection_cases

        _parametrize(metafunc, "bijection_case", "--eddies-flows", bijection_cases)
