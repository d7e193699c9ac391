"""Conformance cases: every (registered bijection, declared example) pair, and how to run one.

A bijection declares its examples when it registers (see :mod:`eddies.core.testing.inputs` for
an example's keys)::

    @register("flows", "scale", config=ScaleConfig, summary="...",
              examples=[{"config": {"factor": 2.0}, "shape": (3,), "context_shape": None}])

:func:`bijection_cases` lists one :class:`Case` per example; an entry without examples yields
one case that fails with a message saying so (it is not skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from eddies.core.registry import Entry, get_registry
from eddies.core.spec import validate_spec
from eddies.core.testing.checks import ConformanceError, run_example
from eddies.core.testing.inputs import inputs_strategy


def no_examples(name: str, keys: Iterable[str], docs: str) -> ConformanceError:
    """The error of a case whose component declares no examples (``keys``: an example's keys)."""
    fields = ", ".join(f"'{k}': ..." for k in keys)
    return ConformanceError(f"{name}: declares no conformance examples; pass examples=[{{{fields}}}] "
                            f"to its @register ({docs})")


def kit_settings() -> Any:
    """The Hypothesis settings of a case's draws: a fifth of the active profile's
    ``max_examples`` (one draw runs every check), no deadline and no shrinking (a seed needs none)."""
    from hypothesis import Phase, settings

    return settings(max_examples=max(1, settings.default.max_examples // 5), deadline=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@dataclass(frozen=True)
class Case:
    """One conformance case: a registry entry (or a bare class) and one of its examples."""

    name: str
    example: Mapping[str, Any] | None
    make_factory: Callable[[Mapping[str, Any]], Callable[[], Any]]

    docs: ClassVar[str] = "see docs/conformance.md"
    runner: ClassVar[Callable[..., None]] = staticmethod(run_example)

    @property
    def id(self) -> str:
        return self.name

    def run(self, seed: int = 0, batch: int = 3) -> None:
        """Run every check once on inputs drawn from ``seed``."""
        if self.example is None:
            raise no_examples(self.name, ("config", "shape", "context_shape"), self.docs)
        self.runner(self.make_factory(self.example), self.example, self.name, seed=seed, batch=batch)

    def check(self) -> None:
        """Run the checks on Hypothesis-drawn seeds and batch sizes (3 fixed seeds without it).

        One draw runs every check (a dozen passes and a Jacobian), so the kit takes a fifth of
        the active Hypothesis profile's ``max_examples`` (3 of the suite's default 15) and no
        deadline.
        """
        try:
            from hypothesis import given
        except ImportError:
            for seed in range(3):
                self.run(seed=seed, batch=2 + seed)
            return
        kit_settings()(given(inputs_strategy())(lambda drawn: self.run(seed=drawn[0], batch=drawn[1])))()


def spec_factory(kind: str, entry: Entry) -> Callable[[Mapping[str, Any]], Callable[[], Any]]:
    """Builds ``entry`` from an example's config as ``build(shape=, context_shape=)``."""
    def factory(example: Mapping[str, Any]) -> Callable[[], Any]:
        spec = validate_spec({"type": entry.ref, **example.get("config", {})}, kind)
        return lambda: spec.build(shape=tuple(example["shape"]), context_shape=example.get("context_shape"))

    return factory


def class_factory(target: Callable[..., Any]) -> Callable[[Mapping[str, Any]], Callable[[], Any]]:
    """Calls ``target(**config, shape=, context_shape=)`` from an example."""
    def factory(example: Mapping[str, Any]) -> Callable[[], Any]:
        return lambda: target(**example.get("config", {}), shape=tuple(example["shape"]),
                              context_shape=example.get("context_shape"))

    return factory


def make_cases(label: str, examples: list[Mapping[str, Any]], factory: Callable[[Mapping[str, Any]], Any],
               case: type = Case) -> list[Any]:
    """One ``case`` per example, ``label[i]``; without examples one failing case ``label``."""
    if not examples:
        return [case(label, None, factory)]
    return [case(f"{label}[{i}]", ex, factory) for i, ex in enumerate(examples)]


def registered_entries(kind: str, names: Iterable[str] | None) -> list[Entry]:
    """The named entries of ``kind`` (``name`` or ``name@N``), or every registered one."""
    registry = get_registry(kind)
    return registry.entries() if names is None else [registry.get(n) for n in names]


def parametrised_test(cases: list[Any], name: str) -> Callable[..., None]:
    """A pytest test function ``name`` parametrised over ``cases`` (ids: the cases' ids)."""
    import pytest

    @pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])
    def test(case: Any) -> None:
        case.check()

    test.__name__ = test.__qualname__ = name
    return test


def _entry_cases(kind: str, entry: Entry) -> list[Case]:
    return make_cases(f"{kind}/{entry.ref}", entry.meta.get("examples") or [], spec_factory(kind, entry))


def bijection_cases(names: Iterable[str] | None = None, kind: str = "flows") -> list[Case]:
    """Cases of the named components (``name`` or ``name@N``), or of every registered one."""
    return [case for entry in registered_entries(kind, names) for case in _entry_cases(kind, entry)]


def cases_for_class(target: Callable[..., Any], examples: list[Mapping[str, Any]], name: str | None = None) -> list[Case]:
    """Cases for an unregistered class or factory called as ``target(**config, shape=, context_shape=)``."""
    return make_cases(name or getattr(target, "__name__", "bijection"), examples, class_factory(target))


def check_bijection_conformance(target: Any, examples: list[Mapping[str, Any]] | None = None,
                                kind: str = "flows") -> None:
    """Run the whole kit on one bijection; raise :class:`ConformanceError` on the first failure.

    ``target`` is a registered name (``"actnorm"`` or ``"actnorm@1"``; its declared examples are
    used unless ``examples`` is given) or an unregistered class/factory with ``examples``.
    """
    if isinstance(target, str):
        if examples:
            entry = get_registry(kind).get(target)
            cases = make_cases(f"{kind}/{entry.ref}", list(examples), spec_factory(kind, entry))
        else:
            cases = bijection_cases([target], kind)
    else:
        cases = cases_for_class(target, list(examples or []))
    for case in cases:
        case.check()


def conformance_test(*names: str, kind: str = "flows") -> Callable[..., None]:
    """A parametrised pytest test over the named components (all registered ones if none)::

        test_my_flows = conformance_test("my_layer")   # in a test module: one line
    """
    return parametrised_test(bijection_cases(names or None, kind), "test_conformance")
