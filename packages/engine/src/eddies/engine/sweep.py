"""Sweep files: a search space over dotted recipe keys, the metric, the scheduler and the budget.

``recipes/sweeps/NAME.yaml`` declares what :mod:`eddies.engine.tune` runs with Ray Tune::

    metric: val_nll            # a metric the trainer reports at each evaluation
    mode: min
    num_samples: 8             # samples of the space (each grid point is sampled this often)
    max_concurrent: 2          # trials at once (default: as many as the resources allow)
    resources: {cpu: 1, gpu: 0}
    scheduler: {type: asha, max_t: 20, grace_period: 2, reduction_factor: 2}   # or {type: fifo}
    storage: /shared/sweeps    # absolute; default: <run dir>/ray
    fixed: {train.epochs: 20}  # dotted recipe keys set in every trial
    space:
      train.optimizer.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
      model.prior.rank: {type: choice, values: [0, 1, 3]}
      model.conditioner.hidden_size: {type: grid, values: [16, 32]}
      train.batch_size: {type: qrandint, low: 32, high: 256, q: 32}

Distributions (Ray Tune's, same bounds):

=============  =====================  =====================================================
type           fields                 samples
=============  =====================  =====================================================
choice         values                 one of ``values``, uniformly
grid           values                 every one of ``values`` (a grid search axis)
uniform        low, high              a float in [low, high)
quniform       low, high, q           uniform, rounded to a multiple of q
loguniform     low, high              a float whose log is uniform in [log low, log high)
qloguniform    low, high, q           loguniform, rounded to a multiple of q
randint        low, high              an integer in [low, high)  (high excluded)
qrandint       low, high, q=1         an integer in [low, high], a multiple of q (high included)
=============  =====================  =====================================================

ASHA's ``max_t`` and ``grace_period`` count evaluations (``training_iteration``: one per report,
i.e. per epoch by default); its rungs are ``grace_period * reduction_factor**k`` below ``max_t``.
A trial that survives every rung runs to the recipe's end, so set ``max_t`` to the evaluations
of a full trial.

:func:`load_sweep` validates the file (read as recipes are: :func:`eddies.core.recipe.load_yaml`;
every number finite and every integer within 64 bits, bounds, values and fixed keys alike) and
:func:`check_space` checks every value the space can produce against the recipe (the key exists,
the value fits the component's config), so a bad sweep fails before Ray starts, with the key
named (every problem of a multi-error report with its full path)::

    >>> sweep = validate_sweep({"space": {"train.optimizer.lr": {"type": "loguniform",
    ...                                                          "low": 1e-4, "high": 1e-2}}})
    >>> sweep.scheduler.type, sweep.metric
    ('fifo', 'val_nll')
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from eddies.core.errors import Problem, RecipeError, brief, did_you_mean
from eddies.core.recipe import (
    Recipe,
    apply_overrides,
    find_recipe,
    load_yaml,
    override_origin,
    parse_override,
    recipes_dir,
    set_dotted,
    validate_recipe,
)
from eddies.core.spec import merge_number_problems, number_problems

SWEEP_VALUE = "sweep value"  # how a recipe error names a key the sweep set (fixed or space)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # bounds, q, cpu, ...: finite


class Choice(_Strict):
    type: Literal["choice"]
    values: list[Any] = Field(..., min_length=1)


class Grid(_Strict):
    type: Literal["grid"]
    values: list[Any] = Field(..., min_length=1)


class _Range(_Strict):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"the range from {self.low} to {self.high} is wider than a float can hold")
        return self


class Uniform(_Range):
    type: Literal["uniform"]


class QUniform(_Range):
    type: Literal["quniform"]
    q: float = Field(..., gt=0)


class LogUniform(_Range):
    type: Literal["loguniform"]
    low: float = Field(..., gt=0)


class QLogUniform(LogUniform):
    type: Literal["qloguniform"]
    q: float = Field(..., gt=0)


class RandInt(_Range):
    type: Literal["randint"]
    low: int
    high: int


class QRandInt(_Range):
    type: Literal["qrandint"]
    low: int
    high: int
    q: int = Field(1, ge=1)


Distribution = Annotated[
    Choice | Grid | Uniform | QUniform | LogUniform | QLogUniform | RandInt | QRandInt,
    Field(discriminator="type"),
]


class ASHA(_Strict):
    """Asynchronous successive halving (Li et al. 2020); times count evaluations."""

    type: Literal["asha"]
    max_t: int = Field(..., ge=1, description="evaluations after which a trial is stopped")
    grace_period: int = Field(1, ge=1, description="evaluations before a trial can be stopped")
    reduction_factor: float = Field(2.0, gt=1)
    brackets: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _grace_within_budget(self):
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period ({self.grace_period}) must not exceed max_t ({self.max_t})")
        return self


class FIFO(_Strict):
    """Run every trial to its end."""

    type: Literal["fifo"]


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, le=1024, description="CPUs per trial (also its torch threads, at most 1024)")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial (fractions share a GPU)")


class Sweep(_Strict):
    """A validated sweep file."""

    name: str | None = None
    description: str = ""
    metric: str | None = Field(
        None, description="reported metric to optimise (default: the recipe's train.monitor or "
        "train.early_stopping metric; see objective())")
    mode: Literal["min", "max"] | None = Field(
        None, description="default: the recipe's monitor mode, else the task's declared direction, else min")
    space: dict[str, Distribution] = Field(..., min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict, description="recipe keys set for every trial")
    num_samples: int = Field(1, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    scheduler: Annotated[ASHA | FIFO, Field(discriminator="type")] = FIFO(type="fifo")
    resources: Resources = Resources()
    storage: str | None = Field(None, description="absolute path of Ray's results (default: <run dir>/ray)")
    seed: int | None = Field(0, ge=0, le=2**32 - 1, description="seed of the random search (numpy's: "
                             "0 to 2**32 - 1; None: not reproducible)")
    max_failures: int = Field(0, ge=0, description="retries of a failed trial, from its last checkpoint")
    # error path (space[KEY], fixed[KEY], ...) -> the command-line override that set it (load_sweep)
    _set_by: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("storage")
    @classmethod
    def _absolute_storage(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isabs(os.path.expanduser(value)):
            raise ValueError(f"storage must be an absolute path, got {brief(value)}")
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def sweeps_dir() -> Path:
    """``recipes/sweeps`` of the recipe directory (see :func:`eddies.core.recipe.recipes_dir`)."""
    return recipes_dir() / "sweeps"


def validate_sweep(tree: Mapping[str, Any], source: str | None = None, overrides: Sequence[str] = (),
                   prefix: str = "") -> Sweep:
    """Validate a sweep mapping; one :class:`RecipeError` naming the key on failure.

    Every number must be finite and every integer fit in 64 bits (:func:`_number_problems`),
    reported with the schema's problems, all at once.

    ``overrides`` are the ``key=value`` words already applied to ``tree`` (:func:`load_sweep`):
    a problem at or below a key one of them set is reported as coming from that command-line
    override (written ``prefix + word``, as it was typed), not from ``source``.
    """
    set_by = _set_by(overrides, prefix)
    try:
        sweep = Sweep.model_validate(dict(tree))
    except ValidationError as err:  # with the non-finite numbers elsewhere, so all come at once
        problems = merge_number_problems(_number_problems(tree),
                                         [Problem(_sweep_path(e["loc"]), _sweep_message(e)) for e in err.errors()])
    else:
        problems = _number_problems({name: getattr(sweep, name) for name in Sweep.model_fields})
        if not problems:
            sweep._set_by = set_by
            return sweep

    def origin(path: str) -> str | None:
        if word := _word_setting(set_by, path):
            return override_origin(word)
        below = [set_by[k] for k in set_by if not path or k.startswith((path + ".", path + "["))]
        if below:  # a check of a whole section that an override changed part of
            return " and ".join([*map(override_origin, below), *([source] if source else [])])
        return None

    (path, message, _), *rest = problems
    raise RecipeError(message, path, source, origin(path), [Problem(p, m, origin(p)) for p, m, _ in rest]) from None


def _number_problems(tree: Mapping[str, Any]) -> list[Problem]:
    """Non-finite numbers and integers beyond 64 bits anywhere in a sweep tree, values and fixed
    keys included (:func:`eddies.core.spec.number_problems`), with the sweep's paths (``space[KEY]``)."""
    found = []
    for name, value in tree.items():
        if name in ("space", "fixed") and isinstance(value, Mapping):
            found += [p for key, item in value.items() for p in number_problems(item, f"{name}[{key}]")]
        else:
            found += number_problems(value, str(name))
    return found


def _set_by(overrides: Sequence[str], prefix: str = "") -> dict[str, str]:
    """Error path of the key each sweep override sets -> the word as typed (``prefix + word``).

    ``space.train.lr=...`` sets ``space[train.lr]``; a later word for the same key wins.
    """
    found = {}
    for word in overrides:
        key = word.partition("=")[0].strip()
        head, _, rest = key.partition(".")
        found[f"{head}[{rest}]" if head in ("space", "fixed") and rest else key] = prefix + word
    return found


def _word_setting(set_by: Mapping[str, str], path: str) -> str | None:
    """The override word of :func:`_set_by` that set ``path`` or a key above it, if one did."""
    above = [k for k in set_by if path == k or path.startswith((k + ".", k + "["))]
    return set_by[max(above, key=len)] if above else None


_TAGGED: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls
    for cls in (Choice, Grid, Uniform, QUniform, LogUniform, QLogUniform, RandInt, QRandInt, ASHA, FIFO)
}


def _sweep_path(loc: tuple[Any, ...]) -> str:
    """``('space', 'train.lr', 'loguniform', 'low')`` -> ``space[train.lr].low`` (union tags dropped)."""
    parts = [str(p) for p in loc]
    if parts[:1] == ["space"] and len(parts) > 1:
        parts = [f"space[{parts[1]}]", *parts[2:]]
    if len(parts) > 1 and parts[1] in _TAGGED:
        del parts[1]
    return ".".join(parts)


def _sweep_message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        key, owner = str(error["loc"][-1]), Sweep
        for part in map(str, error["loc"][:-1]):
            owner = _TAGGED.get(part, Resources if part == "resources" else owner)
        allowed = sorted(set(owner.model_fields) - {"type"} if owner in _TAGGED.values() else owner.model_fields)
        return f"unknown key {brief(key)}.{did_you_mean(key, allowed)} Allowed keys: {', '.join(allowed)}"
    return str(error["msg"]).removeprefix("Value error, ")


def load_sweep(
    name: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), prefix: str = "",
) -> Sweep:
    """Find ``recipes/sweeps/NAME.yaml`` (or a path), apply ``key=value`` overrides, validate.

    Overrides address the sweep file's keys (``num_samples=8``, ``scheduler.max_t=5``); after
    ``space.`` or ``fixed.`` the rest is one recipe key:
    ``space.train.optimizer.lr={type: choice, values: [0.1]}``, ``fixed.train.epochs=3``.
    The sweep's ``name`` defaults to the file's stem. An error an override caused names it,
    written ``prefix + word`` (``apps/tune.py`` passes ``"sweep."``, as the words were typed).
    """
    try:
        path = find_recipe(name, sweeps_dir())
    except RecipeError as err:
        message = err.message.replace("unknown recipe", "unknown sweep").replace("Recipes in", "Sweeps in")
        message = message.replace("look up recipe", "look up sweep")
        raise RecipeError(message.replace("recipe file", "sweep file"), "sweep") from None
    tree = load_yaml(path)
    tree.setdefault("name", path.stem)
    for word in overrides:
        try:
            key, value = parse_override(word)
            head, _, rest = key.partition(".")
            set_dotted(tree, [head, rest] if head in ("space", "fixed") and rest else key.split("."), value)
        except RecipeError as err:
            raise RecipeError(err.message, err.path, str(path), override_origin(prefix + word)) from None
    return validate_sweep(tree, str(path), overrides, prefix)


def _set_by_override(sweep: Sweep, path: str) -> str | None:
    """``the command-line override ...`` that set the sweep's ``path`` (``space[KEY]``), if one did."""
    word = _word_setting(sweep._set_by, path)
    return override_origin(word) if word else None


# ------------------------------------------------------------------------------------------
def override(key: str, value: Any) -> str:
    """The ``key=value`` word that sets dotted recipe ``key`` to ``value`` (YAML round-trip)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    return f"{key}={text.removesuffix(chr(10)).removesuffix('...').strip()}"


def apply_config(tree: Mapping[str, Any], config: Mapping[str, Any], source: str | None = None) -> Recipe:
    """The recipe ``tree`` with a trial's ``config`` (dotted key -> value) applied, validated."""
    words = [override(key, value) for key, value in config.items()]
    return validate_recipe(apply_overrides(tree, words, source, SWEEP_VALUE), source, words, SWEEP_VALUE)


def representative_values(dist: Any) -> list[Any]:
    """Values that bound what ``dist`` can produce: every listed value, or both range ends."""
    if isinstance(dist, Choice | Grid):
        return list(dist.values)
    if isinstance(dist, RandInt):  # high excluded (qrandint includes it)
        return [dist.low, dist.high - 1]
    return [dist.low, dist.high]


def with_fixed(tree: Mapping[str, Any], sweep: Sweep, source: str | None = None) -> dict[str, Any]:
    """The recipe tree with the sweep's ``fixed`` keys set (validated; errors name ``fixed.KEY``)."""
    out = dict(tree)
    for key, value in sweep.fixed.items():
        try:
            word = override(key, value)
            out = apply_overrides(out, [word], source, SWEEP_VALUE)
            validate_recipe(out, source, [word], SWEEP_VALUE)
        except RecipeError as err:
            raise _does_not_fit(f"value {brief(value)}", err, f"fixed[{key}]", sweep) from None
    return out


def _does_not_fit(what: str, err: RecipeError, path: str, sweep: Sweep) -> RecipeError:
    """The error at the sweep's ``path`` for a value the recipe refused with ``err``.

    Its message quotes the recipe's first problem (path, message, origin); the others stay
    further problems, each with its full dotted recipe path and origin.
    """
    first, *rest = err.problems
    reason = (f"{first.path}: " if first.path else "") + first.message
    reason += f" (from {first.origin})" if first.origin else f" (in {err.source})" if err.source else ""
    return RecipeError(f"{what} does not fit the recipe: {reason}", path, sweep.name,
                       _set_by_override(sweep, path), rest)


def objective(tree: Mapping[str, Any], sweep: Sweep, source: str | None = None) -> Sweep:
    """``sweep`` with its ``metric`` and ``mode`` settled against the recipe ``tree``.

    A sweep that names no metric optimises the recipe's monitored one (``train.monitor.metric``,
    else ``train.early_stopping.metric``); with neither it is an error, since the trainer's own
    default (``val_nll`` for a likelihood model, else ``val_loss``) is known only once the model
    runs. The mode is the sweep's, else the recipe's, else the task's declared direction of a
    task metric (:meth:`eddies.core.task.Task.metric_directions`), else ``min``. A task metric
    must be reported at every evaluation (Ray requires the metric in every report), so the recipe
    must keep ``train.task_eval_every: 1``.
    """
    recipe = apply_config(tree, {}, source)
    train = recipe.train
    chosen = [rule for rule in (train.monitor, train.early_stopping) if rule is not None]
    metric = sweep.metric or next((rule.metric for rule in chosen if rule.metric), None)
    if metric is None:
        raise RecipeError(
            "the sweep names no metric and the recipe sets neither train.monitor.metric nor "
            "train.early_stopping.metric; name the one to optimise (val_nll for a likelihood model, "
            "val_loss otherwise, or val_<task metric>)", "metric", sweep.name)
    directions = recipe.task.build(data_dir=None).metric_directions()
    task_metric = metric.removeprefix("val_") if metric.startswith("val_") else None
    mode = sweep.mode or next((rule.mode for rule in chosen if rule.mode and rule.metric in (None, metric)), None)
    mode = mode or directions.get(task_metric) or "min"
    if task_metric in directions and train.task_eval_every != 1:
        raise RecipeError(
            f"{metric} is a task metric, computed every {train.task_eval_every} evaluations, but Ray "
            "needs the sweep's metric in every report: set train.task_eval_every=1 (in the recipe or "
            "the sweep's fixed keys)", "metric", sweep.name)
    return sweep.model_copy(update={"metric": metric, "mode": mode})


def check_space(tree: Mapping[str, Any], sweep: Sweep, source: str | None = None) -> None:
    """Check that every key of the space exists in the recipe and accepts the values it draws.

    ``tree`` is the recipe with the sweep's ``fixed`` keys set (:func:`with_fixed`). Each value
    :func:`representative_values` lists is applied alone on top of it and the whole recipe is
    validated; the error names the space key, the value and the recipe's reason.
    """
    for key, dist in sweep.space.items():
        for value in representative_values(dist):
            try:
                apply_config(tree, {key: value}, source)
            except RecipeError as err:
                raise _does_not_fit(f"{dist.type} value {brief(value)}", err, f"space[{key}]", sweep) from None


__all__ = [
    "ASHA", "FIFO", "Choice", "Grid", "LogUniform", "QLogUniform", "QRandInt", "QUniform", "RandInt",
    "Resources", "Sweep", "Uniform", "apply_config", "check_space", "load_sweep", "override",
    "objective", "representative_values", "sweeps_dir", "validate_sweep", "with_fixed",
]
