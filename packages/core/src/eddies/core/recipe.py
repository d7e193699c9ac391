"""Recipes: YAML files naming a task, a model and training settings, with ``key=value`` overrides.

``load_recipe("frmdn_mnist", ["train.epochs=1", "model.prior.rank=0"])`` finds
``recipes/frmdn_mnist.yaml`` (or takes a path), loads it with YAML's safe loader (tags that
would construct Python objects are refused, so a recipe can only *name* registered components),
applies the overrides, and validates the whole tree with pydantic before any tensor exists.
Every error names the dotted key (``model.flow.layers.2.hidden``) and where the value came from:
the file (``(in recipes/frmdn_mnist.yaml)``) or the override that set it (``(from the
command-line override train.epochs=abc)``).

Override values are parsed as YAML scalars or flow collections (``a=[1, 2]``, ``b={type: mlp}``);
list items are addressed by index (``model.flow.layers.0.hidden=64``). A key that is neither in
the file nor a field of the component at that place is an error listing the closest keys.
Interpolation (``${...}``) is deliberately not supported: a recipe is plain data.

Hostile input is one short :class:`RecipeError`, never a traceback, a hang or silently wrong
data (:func:`parse_yaml`, :func:`load_yaml`): a file that is not UTF-8 or is larger than
:data:`MAX_RECIPE_BYTES`; a key given twice in one mapping (named with its dotted path and both
lines); more than :data:`MAX_YAML_NODES` values or :data:`MAX_YAML_DEPTH` levels once aliases are
expanded ("billion laughs", in a file or an override: refused on the node graph, in
milliseconds); a recursive alias. After validation every number must be finite and every
integer fit in 64 bits, anywhere in the tree (:func:`eddies.core.spec.number_problems`). Error
texts quote user input shortened (:func:`eddies.core.errors.brief`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from eddies.core.errors import Problem, RecipeError, RegistryError, brief, did_you_mean, shorten
from eddies.core.packaged import packaged_recipes
from eddies.core.registry import get_registry
from eddies.core.spec import (
    Spec,
    SpecKind,
    SpecOf,
    join_path,
    merge_number_problems,
    number_problems,
    validation_error,
)

RECIPES_ENV = "EDDIES_RECIPES"
TRACKERS = ("tensorboard", "wandb", "mlflow")
"""The experiment trackers ``train.log_with`` may name (Accelerate's trackers; see eddies.engine.tracking)."""


class Monitor(BaseModel):
    """The evaluation metric that selects the ``best`` checkpoint and drives early stopping.

    ``metric`` is any key an evaluation reports (``val_loss``, ``val_nll``, ``val_<task metric>``);
    default ``val_nll`` when the model is a likelihood (its loss reports ``nll``), else
    ``val_loss``. ``mode`` defaults to the task's declared direction of a task metric
    (:meth:`eddies.core.task.Task.metric_directions`), else ``min``.
    """

    model_config = ConfigDict(extra="forbid")
    metric: str | None = Field(None, description="default: val_nll for a likelihood model, else val_loss")
    mode: Literal["min", "max"] | None = Field(None, description="default: the task's direction, else min")


class EarlyStopping(BaseModel):
    """Stop when the monitored metric has not improved by ``min_delta`` for ``patience`` evals.

    ``metric`` and ``mode`` default to ``train.monitor``'s; when set they must agree with it
    (one metric selects the best checkpoint and stops the run), and alone they set it.
    """

    model_config = ConfigDict(extra="forbid")
    metric: str | None = Field(None, description="default: train.monitor.metric")
    mode: Literal["min", "max"] | None = Field(None, description="default: train.monitor.mode")
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(BaseModel):
    """Training settings shared by every recipe (read by eddies.engine; see docs/training.md)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
    batch_size: int = Field(64, ge=1, description="global batch size, split across processes")
    eval_batch_size: int | None = Field(None, ge=1, description="per-process batch size of evaluation (default: batch_size)")
    epochs: int = Field(1, ge=1, description="passes over the training split")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    optimizer: SpecOf("optimizers") = Field({"type": "adam"}, description="a registered optimizer")
    scheduler: SpecOf("schedulers") | None = Field(None, description="learning-rate schedule, stepped once per optimizer step")
    grad_clip: float | None = Field(None, gt=0, description="max global gradient norm")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field("no", description="autocast precision (on CPU: bf16)")
    monitor: Monitor = Monitor()
    early_stopping: EarlyStopping | None = Field(None, description="stop when the monitored metric stops improving")
    task_eval_every: int | None = Field(
        1, ge=1, description="evaluations between computations of the task's metrics (also at the last "
        "evaluation); null: only at the last")
    max_nonfinite: int = Field(10, ge=1, description="stop after this many non-finite steps in a row")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations (default: each epoch)")
    log_every: int = Field(10, ge=1, description="steps between metrics/steps.jsonl records (and tracker logs)")
    log_with: list[str] = Field(
        default_factory=list, description=f"experiment trackers besides the JSONL files: any of {', '.join(TRACKERS)}")
    progress_every: float | None = Field(
        30.0, gt=0, description="seconds between plain progress lines when stderr is not a terminal; null: none")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints (default: each epoch)")
    num_workers: int = Field(0, ge=0, le=1024, description="data loader worker processes")
    threads: int | None = Field(None, ge=1, le=1024, description="torch intra-op threads (default: torch's)")
    compile: bool = Field(False, description="torch.compile the loss")
    keep_checkpoints: int = Field(3, ge=1, description="newest checkpoints kept (plus 'best')")
    samples: bool = Field(True, description="write the task's sample grid beside the checkpoints at the end")
    find_unused_parameters: bool = Field(False, description="DDP: allow parameters without gradient")

    @field_validator("log_with", mode="before")
    @classmethod
    def _known_trackers(cls, value: Any) -> Any:
        """``log_with: tensorboard`` is ``[tensorboard]``; each name must be one of :data:`TRACKERS`, once."""
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list):
            return value  # pydantic's own message ("Input should be a valid list")
        for name in names:
            if name not in TRACKERS:
                raise ValueError(f"unknown tracker {brief(name)}.{did_you_mean(str(name), TRACKERS)} "
                                 f"Trackers: {', '.join(TRACKERS)}")
        if len(set(names)) < len(names):
            raise ValueError(f"a tracker is named twice in {brief(names)}")
        return names

    @model_validator(mode="after")
    def _one_monitored_metric(self) -> TrainConfig:
        rule = self.early_stopping
        for key in ("metric", "mode"):
            mine, theirs = getattr(self.monitor, key), rule and getattr(rule, key)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(
                    f"early_stopping.{key}={brief(theirs)} differs from monitor.{key}={brief(mine)}: one metric selects "
                    "the best checkpoint and stops the run; set it once, in train.monitor")
        return self


class Recipe(BaseModel):
    """The validated recipe tree."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
    name: str | None = None
    description: str = ""
    seed: int = 0
    task: SpecOf("tasks")
    model: SpecOf("models")
    train: TrainConfig = TrainConfig()
    eval: dict[str, Any] = Field(default_factory=dict, description="task-specific evaluation options")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready tree with defaults filled and component versions pinned."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------------------
def recipes_dir(start: Path | None = None) -> Path:
    """``$EDDIES_RECIPES``, else the nearest ``recipes/`` folder at or above ``start`` (cwd), else the
    recipes installed with the ``eddies`` distribution (:func:`eddies.core.packaged.packaged_recipes`)."""
    if os.environ.get(RECIPES_ENV):
        return Path(os.environ[RECIPES_ENV])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "recipes").is_dir():
            return folder / "recipes"
    return packaged_recipes() or here / "recipes"


def find_recipe(name: str | os.PathLike[str], directory: Path | None = None) -> Path:
    """Resolve a recipe name (``recipes/NAME.yaml``) or a path; unknown names list close ones."""
    try:
        return _find_recipe(name, directory)
    except OSError as err:  # a name too long for the file system, a folder we may not list, ...
        raise RecipeError(f"cannot look up recipe {brief(str(name))}: {err.strerror or err}", "recipe") from None


def _find_recipe(name: str | os.PathLike[str], directory: Path | None) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise RecipeError(f"recipe file {brief(str(path))} does not exist", "recipe")
        return path
    directory = directory or recipes_dir()
    candidate = directory / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in directory.glob("*.yaml"))
    raise RecipeError(
        f"unknown recipe {brief(str(name))} (looked for {shorten(candidate, 200)}).{did_you_mean(str(name), known)} "
        f"Recipes in {directory}: {', '.join(known) or '(none)'}",
        "recipe",
    )


def list_recipes(directory: Path | None = None) -> list[tuple[str, str]]:
    """``(name, description)`` of every recipe file ``*.yaml`` in ``directory`` (default
    :func:`recipes_dir`), sorted by name; a file that does not load says why instead."""
    found = []
    for path in sorted((directory or recipes_dir()).glob("*.yaml")):
        try:
            description = str(load_yaml(path).get("description", ""))
        except RecipeError as err:
            description = f"(cannot be read: {shorten(err.message, 120)})"
        found.append((path.stem, shorten(" ".join(description.split()), 200)))
    return found


MAX_RECIPE_BYTES = 2**18  # a recipe or sweep file larger than 256 KiB is refused unread (recipes: ~3 kB)
MAX_YAML_NODES = 10_000  # values (keys included) of one document, aliases counted each time used (recipes: < 200)
MAX_YAML_DEPTH = 64  # nesting levels of one document, aliases expanded


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing more than :data:`MAX_YAML_NODES` nodes or :data:`MAX_YAML_DEPTH`
    levels while it composes (before any Python object exists)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.nodes = self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes, self.depth = self.nodes + 1, self.depth + 1
        try:
            if self.nodes > MAX_YAML_NODES or self.depth > MAX_YAML_DEPTH:
                limit = (f"more than {MAX_YAML_NODES} values" if self.nodes > MAX_YAML_NODES
                         else f"nested more than {MAX_YAML_DEPTH} levels deep")
                raise yaml.MarkedYAMLError(problem=limit, problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # bounded before composing: PyYAML's scanner is quadratic in the nesting of [ and {
        if self.flow_level >= MAX_YAML_DEPTH:
            raise yaml.scanner.ScannerError(problem=f"nested more than {MAX_YAML_DEPTH} levels deep",
                                            problem_mark=self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as err:  # int() of > 4300 digits, a timestamp like 2001-13-45, ...
            problem = str(err).split(";")[0]  # not Python's advice to raise its digit limit
            raise yaml.constructor.ConstructorError(problem=problem, problem_mark=node.start_mark) from None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_message(err: yaml.YAMLError, text: str) -> str:
    """One line saying what is wrong and where (PyYAML's own text spans several lines)."""
    problem = getattr(err, "problem", None)
    if isinstance(err, yaml.constructor.ConstructorError) and "constructor for the tag" in (problem or ""):
        return (f"YAML tag refused: {shorten(problem, 200)}. Recipes are plain data and can only name "
                "registered components, never Python objects or import paths")
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        return f"unacceptable character #x{err.character:04x} at line {line} ({err.reason})"
    if isinstance(err, yaml.MarkedYAMLError):
        context = err.context or ""
        if problem and context:
            problem = f"{problem} ({context})" if context.startswith("while") else f"{context}, {problem}"
        mark = err.problem_mark or err.context_mark
        return f"invalid YAML: {shorten(problem or context, 300)}" + (f" at {_where(mark)}" if mark else "")
    return f"invalid YAML: {shorten(str(err).splitlines()[0] if str(err) else type(err).__name__, 300)}"


def parse_yaml(text: str, path: str = "", source: str | None = None) -> Any:
    """Parse one YAML document with the safe loader, within bounds; a :class:`RecipeError` otherwise.

    Refused, each with the dotted key (below ``path``) or the line: Python-object tags; a key
    given twice in one mapping (YAML would silently keep the last; ``<<`` merge keys may be
    overridden); more than :data:`MAX_YAML_NODES` values or :data:`MAX_YAML_DEPTH` levels with
    aliases expanded ("billion laughs": checked on the node graph, before anything is expanded);
    a recursive alias. ``source`` names the file in the error.
    """
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, path, 0, {}, set())
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise RecipeError(_yaml_message(err, text), path, source) from None
    except RecipeError as err:
        raise RecipeError(err.message, err.path, source) from None
    finally:
        if loader is not None:
            loader.dispose()


_MERGE = "tag:yaml.org,2002:merge"


def _measure(node: Any, path: str, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> tuple[int, int]:
    """``(values, height)`` of a composed YAML node with its aliases expanded, without expanding them.

    Shared nodes (anchors) are measured once (``memo``); the walk stops as soon as a bound is
    crossed, so a "billion laughs" document costs a few microseconds. Also refuses duplicate
    keys (naming the key's dotted path and both lines) and an alias inside its own anchor.
    """
    if id(node) in active:
        raise RecipeError("recursive YAML alias: a value cannot contain itself", path)
    if id(node) not in memo:
        if depth > MAX_YAML_DEPTH:
            raise RecipeError(f"nested more than {MAX_YAML_DEPTH} levels deep (YAML aliases expanded)", path)
        active.add(id(node))
        children: list[tuple[str, Any]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(join_path(path, i), item) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                here = join_path(path, name)
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                    if (key.tag, key.value) in first_line:
                        raise RecipeError(
                            f"duplicate key {brief(name)} at {_where(key.start_mark)} (first at line "
                            f"{first_line[key.tag, key.value]}); YAML would silently keep only the last value",
                            here)
                    first_line[key.tag, key.value] = key.start_mark.line + 1
                children += [(here, key), (here, value)]
        size, height = 1, 0
        for child_path, child in children:
            child_size, child_height = _measure(child, child_path, depth + 1, memo, active)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_YAML_NODES:
                raise RecipeError(f"YAML aliases expand this to more than {MAX_YAML_NODES} values "
                                  "(a recipe is small plain data; is this a \"billion laughs\" document?)", path)
        active.discard(id(node))
        memo[id(node)] = size, height
    size, height = memo[id(node)]
    if depth + height > MAX_YAML_DEPTH:
        raise RecipeError(f"nested more than {MAX_YAML_DEPTH} levels deep (YAML aliases expanded)", path)
    return size, height


def load_yaml(path: Path | str) -> dict[str, Any]:
    """Load a recipe or sweep file: a YAML mapping, UTF-8, read with :func:`parse_yaml`'s bounds.

    Every problem is one :class:`RecipeError` naming the file: unreadable, larger than
    :data:`MAX_RECIPE_BYTES`, not UTF-8 (the line of the first bad byte), invalid YAML (line and
    column), a refused tag, a duplicate key, too many values or levels, not a mapping.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RECIPE_BYTES + 1)
    except OSError as err:
        raise RecipeError(f"cannot read the file: {err.strerror or err}", source=str(path)) from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(f"file larger than {MAX_RECIPE_BYTES} bytes; a recipe is a small text file",
                          source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise RecipeError(f"not UTF-8 text: byte 0x{data[err.start]:02x} at line {line} cannot be decoded; "
                          "save the file as UTF-8", source=str(path)) from None
    tree = parse_yaml(text, source=str(path))
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise RecipeError(f"a recipe must be a mapping, got {type(tree).__name__}", source=str(path))
    return tree


def parse_override(arg: str) -> tuple[str, Any]:
    """``"a.b.0.c=value"`` -> ("a.b.0.c", parsed YAML value), with :func:`parse_yaml`'s rules."""
    key, sep, raw = arg.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"override {brief(arg)} must look like key=value (e.g. train.epochs=2)")
    return key, parse_yaml(raw, key) if raw.strip() else None


def set_dotted(
    tree: dict[str, Any], parts: Sequence[str], value: Any,
    fill: Callable[[dict[str, Any], str, tuple[str, ...]], Any] | None = None,
) -> None:
    """Set ``tree[parts[0]][parts[1]]... = value`` in place.

    The one override walker of recipes (:func:`apply_overrides`) and sweep files
    (:func:`eddies.engine.sweep.load_sweep`). Mappings are entered by key, lists by (possibly
    negative) index; an absent or null intermediate key of a mapping is created as
    ``fill(mapping, key, path so far with list indices resolved)`` (default: an empty mapping),
    where ``fill`` may raise instead. A part that is not a valid index of a list, or a scalar in
    the way, is a :class:`RecipeError` naming the dotted path reached.
    """
    node: Any = tree
    resolved: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit():
                raise RecipeError(f"{brief(part)} is not a list index (list has {len(node)} items)", join_path(*resolved, part))
            key: Any = int(part)
            if not -len(node) <= key < len(node):
                raise RecipeError(f"index {key} out of range (list has {len(node)} items)", join_path(*resolved, part))
            resolved.append(str(key % len(node)))
        elif isinstance(node, dict):
            key = part
            resolved.append(part)
            if not last and node.get(part) is None:
                node[part] = {} if fill is None else fill(node, part, tuple(resolved))
        else:
            raise RecipeError(
                f"cannot set {brief('.'.join(parts))}: {brief('.'.join(resolved))} holds a {type(node).__name__}, "
                "not a mapping or list", join_path(*resolved, part))
        if last:
            node[key] = value
        else:
            node = node[key]


def override_origin(word: str, label: str = "command-line override") -> str:
    """How an error caused by an override names it: ``the command-line override train.epochs=abc``."""
    return f"the {label} {shorten(word, 120)}"


def apply_overrides(
    tree: Mapping[str, Any], overrides: Sequence[str], source: str | None = None,
    label: str = "command-line override",
) -> dict[str, Any]:
    """Return a copy of ``tree`` with dotted ``key=value`` overrides applied (:func:`set_dotted`).

    An absent intermediate key is created from the schema's default when it is a field of the
    model or component at that place (so ``train.optimizer.lr=0.1`` works on a recipe that has
    no ``train`` section); any other absent key is an error listing the closest keys. A new leaf
    is checked against the schema during validation. Errors end with ``(from the <label> <word>)``
    (:func:`override_origin`), not with the recipe file.
    """
    tree = copy.deepcopy(dict(tree))

    def fill(node: dict[str, Any], part: str, path: tuple[str, ...]) -> Any:
        fields = _fields_of(node, _schema_at(tree, path[:-1]))
        if part not in fields:
            allowed = sorted(set(node) | set(fields))
            raise RecipeError(f"unknown key {brief(part)}.{did_you_mean(part, allowed)} Existing keys: "
                              f"{', '.join(allowed)}", ".".join(path))
        return _default_tree(fields[part])

    for word in overrides:
        try:
            key, value = parse_override(word)
            set_dotted(tree, key.split("."), value, fill)
        except RecipeError as err:
            raise RecipeError(err.message, err.path, source, override_origin(word, label)) from None
    return tree


def _schema_at(tree: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """The schema (see :func:`_schema_of`) of the node ``parts`` reaches in ``tree``, from :class:`Recipe`."""
    schema: Any = Recipe
    node: Any = tree
    for part in parts:
        if isinstance(node, list):
            schema, node = (schema[1] if isinstance(schema, tuple) else None), node[int(part)]
        else:
            fields = _fields_of(node, schema)
            schema = _schema_of(fields[part].annotation, fields[part].metadata) if part in fields else None
            node = node[part]
    return schema


def _schema_of(annotation: Any, metadata: Sequence[Any] = ()) -> Any:
    """What a field holds: a pydantic model class, a :class:`SpecKind`, ``("list", item)`` or None."""
    for mark in metadata:
        if isinstance(mark, SpecKind):
            return mark
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _schema_of(args[0], args[1:])
    if origin in (Union, UnionType):
        return next((_schema_of(a) for a in args if a is not type(None)), None)
    if origin is list:
        return ("list", _schema_of(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _fields_of(node: Mapping[str, Any], schema: Any) -> dict[str, FieldInfo]:
    """Config fields at a tree node: its pydantic model's, or its component's (kind from the schema)."""
    if isinstance(schema, type):
        return dict(schema.model_fields)
    if isinstance(schema, SpecKind) and "type" in node:
        try:
            return dict(get_registry(schema.kind).get(str(node["type"])).config.model_fields)
        except RegistryError:
            return {}  # validation reports the unknown component with suggestions
    return {}


def _default_tree(field: FieldInfo) -> Any:
    """A field's default as plain data (an empty mapping when it has none)."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, Spec):
        return default.to_dict()
    if isinstance(default, BaseModel):
        return default.model_dump(mode="json")
    if isinstance(default, dict):
        return copy.deepcopy(default)
    return {}


def validate_recipe(
    tree: Mapping[str, Any], source: str | None = None, overrides: Sequence[str] = (),
    label: str = "command-line override",
) -> Recipe:
    """Validate a whole recipe tree; one :class:`RecipeError` with dotted paths on failure.

    Besides the schema, every number must be finite and every integer fit in 64 bits
    (:func:`eddies.core.spec.number_problems`), wherever it is (``eval`` options included).

    ``overrides`` are the ``key=value`` words already applied to ``tree``: a problem at or below
    a key one of them set is reported as coming from that override, not from ``source``.
    """
    try:
        recipe = Recipe.model_validate(dict(tree))
    except ValidationError as err:  # with the non-finite numbers elsewhere, so all come at once
        problems = merge_number_problems(number_problems(tree),
                                         validation_error(err, Recipe, "", source).problems)
    else:
        problems = number_problems(recipe)
        if not problems:
            return recipe
    set_by = _override_paths(tree, overrides)

    def origin(path: str) -> str | None:
        above = [k for k in set_by if path == k or path.startswith(k + ".")]
        if above:  # the override set this value
            return override_origin(set_by[max(above, key=len)], label)
        below = [set_by[k] for k in set_by if not path or k.startswith(path + ".")]
        if below:  # a check of a whole section that an override changed part of
            return " and ".join([*(override_origin(w, label) for w in below), *([source] if source else [])])
        return None

    first, *rest = problems
    raise RecipeError(first.message, first.path, source, origin(first.path),
                      [Problem(p.path, p.message, origin(p.path)) for p in rest]) from None


def _override_paths(tree: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, str]:
    """Dotted path (list indices resolved against ``tree``) -> the override word that set it."""
    found: dict[str, str] = {}
    for word in overrides:
        parts, node = parse_override(word)[0].split("."), tree
        for i, part in enumerate(parts):
            if isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
                parts[i] = str(int(part) % len(node))
                node = node[int(part)]
            elif isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                break
        found[".".join(parts)] = word  # a later override of the same key wins
    return found


def recipe_tree(
    recipe: str | os.PathLike[str] | Mapping[str, Any],
    overrides: list[str] | tuple[str, ...] = (),
    directory: Path | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Find, load and override a recipe, without validating: ``(tree, source file or None)``."""
    if isinstance(recipe, Mapping):
        tree, source = dict(recipe), None
    else:
        path = find_recipe(recipe, directory)
        tree, source = load_yaml(path), str(path)
        tree.setdefault("name", path.stem)
    return apply_overrides(tree, list(overrides), source), source


def load_recipe(
    recipe: str | os.PathLike[str] | Mapping[str, Any],
    overrides: list[str] | tuple[str, ...] = (),
    directory: Path | None = None,
) -> Recipe:
    """Find, load, override and validate a recipe (name, path or an already-loaded mapping)."""
    tree, source = recipe_tree(recipe, overrides, directory)
    return validate_recipe(tree, source, overrides)


def split_cli(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split command-line ``key=value`` words into app options (no dot) and recipe overrides.

    Words whose key has no dot (``recipe=...``, ``resume=auto``) are the app's own options;
    dotted ones (``train.epochs=2``) override the recipe.
    """
    options: dict[str, str] = {}
    overrides: list[str] = []
    for word in argv:
        key, sep, value = word.partition("=")
        if not sep:
            raise RecipeError(f"argument {brief(word)} must look like key=value")
        if "." in key:
            overrides.append(word)
        else:
            options[key] = value
    return options, overrides


__all__ = [
    "MAX_RECIPE_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "TRACKERS", "EarlyStopping", "Monitor", "Recipe", "Spec",
    "TrainConfig", "apply_overrides", "find_recipe", "list_recipes", "load_recipe", "load_yaml", "override_origin",
    "parse_override", "parse_yaml", "recipe_tree", "recipes_dir", "set_dotted", "split_cli", "validate_recipe",
]
