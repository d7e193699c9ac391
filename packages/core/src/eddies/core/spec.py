"""Component specs: ``{type: name[@N], field: value, ...}`` validated and built recursively.

A spec names a registered component and sets its config fields; fields may hold nested specs,
declared in a config model with :func:`SpecOf`::

    class CouplingConfig(ComponentConfig):
        net: SpecOf("conditioners") = {"type": "mlp"}
        hidden: int = 64

:func:`validate_spec` checks a whole tree before anything is built and reports every problem
with the dotted path of its key (``model.flow.layers.2.hidden: Input should be a valid
integer``); :meth:`Spec.build` then calls the component with its validated fields plus the
*runtime* arguments its parent supplies (shapes known only once the data is known). A plain
string is shorthand for ``{type: string}``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, PlainSerializer, PlainValidator, ValidationError, WithJsonSchema
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from eddies.core.errors import Problem, RecipeError, RegistryError, brief, did_you_mean
from eddies.core.registry import Entry, get_registry


class Spec:
    """A validated spec: the registry entry plus its validated config instance."""

    __slots__ = ("kind", "entry", "config")

    def __init__(self, kind: str, entry: Entry, config: BaseModel):
        self.kind, self.entry, self.config = kind, entry, config

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def version(self) -> int:
        return self.entry.version

    def fields(self) -> dict[str, Any]:
        """The validated config fields, nested specs left as :class:`Spec` objects."""
        return {name: getattr(self.config, name) for name in type(self.config).model_fields}

    def build(self, **runtime: Any) -> Any:
        """Call the component with its config fields and the runtime arguments from its parent."""
        fields = self.fields()
        clash = sorted(set(fields) & set(runtime))
        if clash:
            raise TypeError(
                f"{self.kind}/{self.entry.ref}: runtime arguments {clash} clash with config fields"
            )
        built = self.entry.target(**fields, **runtime)
        from eddies.core.objects import remember  # lazy: objects imports this module
        return remember(built, self, runtime)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready spec with every default filled in and every version pinned (``name@N``)."""
        return {"type": self.entry.ref, **self.config.model_dump(mode="json")}

    def entries(self) -> list[Entry]:
        """This entry and those of all nested specs, depth first (for checkpoint provenance)."""
        found = [self.entry]
        for value in self.fields().values():
            found += _nested_entries(value)
        return found

    def replace(self, **changes: Any) -> Spec:
        """A new validated spec with some fields changed."""
        return validate_spec({**self.to_dict(), **changes}, self.kind)

    def __repr__(self) -> str:
        return f"Spec({self.kind}/{self.entry.ref}, {self.config!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Spec) and self.to_dict() == other.to_dict()


def _nested_entries(value: Any) -> list[Entry]:
    if isinstance(value, Spec):
        return value.entries()
    if isinstance(value, BaseModel):
        return [e for name in type(value).model_fields for e in _nested_entries(getattr(value, name))]
    if isinstance(value, (list, tuple)):
        return [e for item in value for e in _nested_entries(item)]
    if isinstance(value, Mapping):
        return [e for item in value.values() for e in _nested_entries(item)]
    return []


def _validate_nested(value: Any, kind: str) -> Spec:
    try:
        return validate_spec(value, kind)
    except RecipeError as err:  # every problem travels, each with its path inside this spec
        raise PydanticCustomError(
            "eddies_spec", "{message}",
            {"path": err.path, "message": err.message, "problems": [tuple(p) for p in err.problems]},
        ) from None


@dataclass(frozen=True)
class SpecKind:
    """Annotation metadata naming the kind of spec a config field holds (see :func:`SpecOf`)."""

    kind: str


def SpecOf(kind: str) -> Any:  # noqa: N802 (reads as a type in config models)
    """Annotation for a config field holding a nested spec of ``kind`` (validated recursively)."""
    get_registry(kind)  # fail early on a misspelt kind
    return Annotated[
        Spec,
        SpecKind(kind),
        PlainValidator(partial(_validate_nested, kind=kind)),
        PlainSerializer(lambda spec: spec.to_dict(), when_used="always"),
        WithJsonSchema(
            {
                "type": ["object", "string"],
                "description": f"a {kind} spec: {{type: name[@N], <that component's fields>}} "
                f"(see apps/components.py list {kind})",
                "properties": {"type": {"type": "string"}},
                "required": ["type"],
            }
        ),
    ]


def join_path(*parts: Any) -> str:
    """Dotted recipe path from parts, skipping empty ones: ``join_path('model', 'flow', 2)``."""
    return ".".join(str(p) for p in parts if p not in ("", None))


MAX_NAME = 100  # characters of a component name (``type``) looked up in the registry
INT_RANGE = (-(2**63), 2**63 - 1)  # torch's integers are 64-bit: every integer setting must fit


def number_problems(value: Any, path: str = "") -> list[Problem]:
    """A :class:`Problem` for every non-finite float and every integer outside :data:`INT_RANGE`.

    Walks a tree (plain data, pydantic models, :class:`Spec` configs, lists, mappings); each
    problem has the value's full dotted path. On a validated tree the values pydantic converted
    count too (``lr: "inf"`` is the float ``inf`` by then). A non-finite setting trains nothing
    useful (``nan`` passes no comparison), and an integer torch cannot hold fails deep inside it
    (``seed``, sizes). A float's message starts as pydantic's does for a field refusing ``inf``.
    """
    if isinstance(value, Spec):
        return number_problems(value.config, path)
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields
                for p in number_problems(getattr(value, name), join_path(path, name))]
    if isinstance(value, Mapping):
        return [p for key, item in value.items() for p in number_problems(item, join_path(path, key))]
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in number_problems(item, join_path(path, i))]
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(path, f"Input should be a finite number, not {value}")]
    if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        return [Problem(path, f"integer of {value.bit_length()} bits is out of range: torch takes 64-bit "
                              "integers, from -2**63 to 2**63 - 1")]
    return []


def merge_number_problems(found: Sequence[Problem], problems: Sequence[Problem]) -> list[Problem]:
    """``found`` (:func:`number_problems` of the raw tree) and the schema's ``problems`` at other
    paths (a ``nan`` also fails ``gt=0``: the clearer problem replaces that one)."""
    paths = {p.path for p in found}
    return [*found, *(p for p in problems if p.path not in paths)]


def validation_error(
    err: ValidationError, model: type[BaseModel], path: str = "", source: str | None = None
) -> RecipeError:
    """Turn pydantic's errors into one :class:`RecipeError` whose problems each give a full dotted path.

    A nested spec's own problems (several, from :func:`validate_spec` below this field) are
    all kept, each prefixed with the path of the field that holds the spec.
    """
    problems: list[Problem] = []
    for e in err.errors():
        loc = join_path(path, *e["loc"])
        if e["type"] == "eddies_spec":
            nested = e["ctx"].get("problems") or [(e["ctx"]["path"], e["ctx"]["message"])]
            problems += [Problem(join_path(loc, p[0]), p[1]) for p in nested]
            continue
        if e["type"] == "extra_forbidden":
            msg = _unknown_key_message(str(e["loc"][-1]), _fields_at(model, e["loc"][:-1]))
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
        problems.append(Problem(loc, msg))
    first, *rest = problems
    return RecipeError(first.message, first.path, source, further=rest)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (possibly nested) pydantic model reached by ``loc``."""
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif isinstance(part, str):
            return []
    return sorted(model.model_fields)


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    return f"unknown key {brief(key)}.{did_you_mean(key, allowed)} Allowed keys: {', '.join(allowed) or '(none)'}"


def validate_spec(spec: Any, kind: str, path: str = "", source: str | None = None) -> Spec:
    """Validate a spec (mapping or name string) of ``kind``, recursively; raise :class:`RecipeError`."""
    if not isinstance(spec, str | Mapping):  # a Spec, a built component, or an object stating its spec
        from eddies.core.objects import spec_of_object
        return spec_of_object(spec, kind, path, source)
    if isinstance(spec, str):
        spec = {"type": spec}
    if "type" not in spec:
        raise RecipeError(
            f"{kind} spec has no 'type'; registered {kind}: {', '.join(get_registry(kind).names())}",
            path, source,
        )
    ref = str(spec["type"])
    if len(ref) > MAX_NAME:  # the registry's error would quote it whole
        raise RecipeError(f"{kind} component name {brief(ref)} is longer than {MAX_NAME} characters: not "
                          f"a registered name; registered {kind}: {', '.join(get_registry(kind).names())}",
                          join_path(path, "type"), source)
    try:
        entry = get_registry(kind).get(ref)
    except RegistryError as err:
        raise RecipeError(str(err), join_path(path, "type"), source) from None
    fields = {k: v for k, v in spec.items() if k != "type"}
    try:
        config = entry.config.model_validate(fields)
    except ValidationError as err:
        problems = merge_number_problems(number_problems(fields, path),
                                         validation_error(err, entry.config, path, source).problems)
    else:
        problems = number_problems(config, path)
        if not problems:
            return Spec(kind, entry, config)
    raise RecipeError(problems[0].message, problems[0].path, source, further=problems[1:])


class FieldRow(NamedTuple):
    """One row of :func:`describe_config`: dotted key, type, default, description."""

    key: str
    type: str
    default: str
    description: str


_BOUNDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"), (annotated_types.Le, "le", "<="),
           (annotated_types.Lt, "lt", "<"))


def type_text(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A config field's type as a reader writes it: ``int >= 1``, ``float | null``, ``no | fp16 | bf16``,
    ``list of int``, ``optimizers spec`` (a nested component), ``mapping``."""
    bounds = [f"{sign} {getattr(mark, name)}" for mark in metadata for cls, name, sign in _BOUNDS
              if isinstance(mark, cls)]
    kind = next((mark.kind for mark in metadata if isinstance(mark, SpecKind)), None)
    origin, args = get_origin(annotation), get_args(annotation)
    if kind is not None:
        text = f"{kind} spec"
    elif origin is Annotated:
        return type_text(args[0], [*args[1:], *metadata])
    elif origin in (Union, types.UnionType):
        text = " | ".join(type_text(a) if a is not type(None) else "null" for a in args)
    elif origin is Literal:
        text = " | ".join(str(a) for a in args)
    elif origin in (list, tuple, Sequence):
        text = f"list of {type_text(args[0])}" if args else "list"
    elif origin is dict or annotation is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        text = "mapping"
    elif annotation is Any:
        text = "any"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    return " ".join([text, *bounds]) if bounds else text


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, Spec):
        default = default.to_dict()
    elif isinstance(default, BaseModel):
        default = default.model_dump(mode="json")
    text = yaml.safe_dump(default, default_flow_style=True, width=math.inf).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def describe_config(config: type[BaseModel], prefix: str = "") -> list[FieldRow]:
    """Every field of a config model as a :class:`FieldRow`, nested models' fields under dotted
    keys (``monitor.metric``); what ``apps/components.py show`` and ``apps/train.py --help`` print."""
    rows = []
    for name, field in config.model_fields.items():
        key = join_path(prefix, name)
        nested = [a for a in (field.annotation, *get_args(field.annotation))
                  if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested and not any(isinstance(m, SpecKind) for m in field.metadata):
            if field.get_default(call_default_factory=True) is None:
                rows.append(FieldRow(key, type_text(field.annotation, field.metadata), "null",
                                     field.description or ""))
            rows += describe_config(nested[0], key)
            continue
        rows.append(FieldRow(key, type_text(field.annotation, field.metadata), _default_text(field),
                             " ".join((field.description or "").split())))
    return rows


def field_table(rows: Sequence[FieldRow]) -> str:
    """:func:`describe_config`'s rows as aligned text columns (the description last, unpadded)."""
    head = FieldRow("key", "type", "default", "description")
    shown = [head, *rows]
    widths = [max(len(getattr(r, c)) for r in shown) for c in ("key", "type", "default")]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)), r[3]]).rstrip()
                     for r in shown)


def build(spec: Any, kind: str | None = None, **runtime: Any) -> Any:
    """Validate (unless already a :class:`Spec`) and build a component with runtime arguments."""
    if not isinstance(spec, Spec):
        if kind is None:
            raise TypeError("build() needs the kind to validate a raw spec")
        spec = validate_spec(spec, kind)
    return spec.build(**runtime)
