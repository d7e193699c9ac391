"""Python objects where a spec is expected: a :class:`~eddies.core.spec.Spec`, or a built component.

A recipe tree is plain data, but in Python one often holds the pieces already: a validated
``Spec``, or a component built with :func:`eddies.core.build` (a flow layer, a model, a task).
Either may stand wherever a spec mapping is expected (a recipe's ``task`` or ``model``, a
nested ``SpecOf`` field)::

    >>> import eddies.models
    >>> from eddies.core import DataSpec, build, validate_spec
    >>> layer = build({"type": "affine_coupling", "net": {"type": "mlp", "hidden": [8]}}, "flows",
    ...               shape=(4,), context_shape=None)
    >>> spec = validate_spec({"type": "conditional_flow", "flow": layer}, "models")
    >>> model = spec.build(data=DataSpec({"y": (4,)}, condition=None))
    >>> model.flow is layer, spec.to_dict()["flow"]["type"]
    (True, 'affine_coupling@1')
    >>> spec.build(data=DataSpec({"y": (3,)}, condition=None))
    Traceback (most recent call last):
    ...
    eddies.core.errors.RecipeError: model.flow: conditional_flow builds its flow with shape=(3,) and context_shape=None; 'affine_coupling' refused: the built flows component affine_coupling@1 was built with shape=(4,), but is placed where shape=(3,) is needed; build it with shape=(3,), or give its spec (a mapping) so that it is built here

Rules:

- **Recording.** :meth:`Spec.build` remembers on the object it returns the spec it was built
  from and its shape-like runtime arguments (:func:`remember`), so a built component can say
  which plain spec rebuilds it. Recipes and checkpoints store that spec (``to_dict``), never the
  object: a checkpoint rebuilds it from the spec and loads its weights, as for any component.
- **Standing in.** :func:`spec_of_object` turns a ``Spec`` (of the right kind) or a built component
  into a :class:`BuiltSpec`, whose :meth:`~BuiltSpec.build` returns the object itself, checking
  that the shapes its parent now asks for are the ones it was built with (a flow built for
  ``shape=(4,)`` placed in a model whose target has 3 values is a ``ShapeError``, which the model
  reports as a :class:`RecipeError` at its slot). The
  parent thus holds that very object, trained weights included.
- **Objects that state their own spec.** An object with a ``to_spec()`` method (a mapping, e.g.
  the ``tensors`` task, whose tensors were given in Python and written to a file) is recorded
  by that spec instead.

Anything else (an object eddies did not build, a number, a list) is a ``RecipeError`` naming
the path and what was expected; so is a built optimizer or schedule (:data:`BOUND_KINDS`): the
trainer builds them for the model's own parameters, which a built one would silently ignore.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from eddies.core.errors import RecipeError, ShapeError, brief
from eddies.core.spec import Spec, validate_spec
from eddies.core.task import DataSpec

# beside each built component, by id (never on it): (its Spec, its shape-like runtime arguments);
# an entry leaves with its component (weakref.finalize), so a reused id never finds a stale one
_BUILT_FROM: dict[int, tuple[Spec, dict[str, Any]]] = {}
BOUND_KINDS = ("optimizers", "schedulers")  # built for the parameters (optimizer) they act on: specs only


def _shape_like(value: Any) -> bool:
    """Runtime arguments compared when a built component is placed: shapes (``None``: no shape,
    as an unconditional layer's ``context_shape``) and data specs."""
    if value is None or isinstance(value, DataSpec):
        return True
    return isinstance(value, tuple | list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _canonical(value: Any) -> Any:
    """A shape as a tuple, a data spec with tuple shapes: what :meth:`BuiltSpec.build` compares."""
    if isinstance(value, DataSpec):
        return DataSpec({k: tuple(v) for k, v in value.shapes.items()}, value.target, value.condition)
    return tuple(value) if isinstance(value, list) else value


def remember(component: Any, spec: Spec, runtime: Mapping[str, Any]) -> Any:
    """Record beside ``component`` the ``spec`` it was built from and its shape-like runtime
    arguments. The component itself is left as built (a torch schedule's ``state_dict`` is its
    ``__dict__``, so an attribute would land in checkpoints). Objects that cannot be weakly
    referenced (builtins, ``__slots__`` without ``__weakref__``) are not recorded: they cannot stand
    in for a spec later.
    """
    try:
        weakref.finalize(component, _BUILT_FROM.pop, id(component), None)
    except TypeError:
        return component
    _BUILT_FROM[id(component)] = (spec, {k: _canonical(v) for k, v in runtime.items() if _shape_like(v)})
    return component


class BuiltSpec(Spec):
    """A built component standing where a spec is expected: :meth:`build` returns it.

    ``to_dict`` (what recipes and checkpoints record) is the spec it was built from, or the one
    its ``to_spec()`` states.
    """

    __slots__ = ("component", "shapes")

    def __init__(self, spec: Spec, component: Any, shapes: Mapping[str, Any]):
        super().__init__(spec.kind, spec.entry, spec.config)
        self.component, self.shapes = component, dict(shapes)

    def build(self, **runtime: Any) -> Any:
        """The component itself; a shape its parent asks for that differs from the one it was
        built with is a :class:`~eddies.core.errors.ShapeError` naming both (a model turns it into
        a ``RecipeError`` at its slot, ``model.flow``)."""
        for key, value in runtime.items():
            if key in self.shapes and _shape_like(value):
                wanted = _canonical(value)
                if wanted != self.shapes[key]:
                    raise ShapeError(
                        f"the built {self.kind} component {self.entry.ref} was built with {key}="
                        f"{self.shapes[key]}, but is placed where {key}={wanted} is needed; build it with "
                        f"{key}={wanted}, or give its spec (a mapping) so that it is built here")
        return self.component

    def __repr__(self) -> str:
        return f"BuiltSpec({self.kind}/{self.entry.ref}, {type(self.component).__name__})"


def spec_of_object(value: Any, kind: str, path: str = "", source: str | None = None) -> Spec:
    """The :class:`Spec` standing for ``value`` where a spec of ``kind`` is expected.

    ``value`` is a ``Spec`` of that kind (returned as is), an object with ``to_spec()``, or a
    component :func:`remember` recorded; anything else is a :class:`RecipeError` at ``path``.
    """
    if isinstance(value, Spec):
        if value.kind != kind:
            raise RecipeError(f"expected a {kind} spec, got a {value.kind} spec ({value.entry.ref})", path, source)
        return value
    if kind in BOUND_KINDS:  # built from the very objects it acts on: another model's parameters, ...
        raise RecipeError(f"{kind}: a component of this kind must be given as a spec (a mapping with 'type'): it is built "
                          f"for the model's own parameters, so a built one cannot stand in, got "
                          f"{type(value).__name__}", path, source)
    stated = getattr(value, "to_spec", None)
    recorded = _BUILT_FROM.get(id(value))
    if callable(stated):
        spec = validate_spec(stated(), kind, path, source)
        return BuiltSpec(spec, value, recorded[1] if recorded else {})
    if recorded is not None:
        spec, shapes = recorded
        if spec.kind != kind:
            raise RecipeError(f"expected a {kind} component, got a built {spec.kind} component ({spec.entry.ref})",
                              path, source)
        return BuiltSpec(spec, value, shapes)
    if value is None or isinstance(value, int | float | bool | str | list | tuple | Mapping):
        raise RecipeError(f"expected a {kind} spec (a mapping with 'type'), got {type(value).__name__} {brief(value)}",
                          path, source)
    raise RecipeError(
        f"expected a {kind} spec (a mapping with 'type'), got a {type(value).__name__} object that eddies did not "
        f"build: build it with eddies.core.build(spec, {kind!r}, ...) so that it records its spec, or give the spec",
        path, source)


__all__ = ["BOUND_KINDS", "BuiltSpec", "remember", "spec_of_object"]
