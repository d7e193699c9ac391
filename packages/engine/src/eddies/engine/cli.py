"""The command lines behind ``apps/train.py``, ``apps/evaluate.py`` and ``apps/sample.py``.

Arguments are ``key=value`` words: keys without a dot are the app's options, dotted keys override
the recipe (``train.epochs=2``). An :class:`~eddies.core.errors.EddiesError` (unknown recipe, wrong
override, corrupted checkpoint, missing data, a plug-in that fails while imported, ...) or an
``OSError`` (a path that cannot be read or written; the line names it) prints ``error: <message>``
on stderr and exits with status 2, without a traceback. Ctrl-C prints ``error: ...`` too (for
training: where it saved the checkpoint) and exits with status 130. Any other exception keeps its
traceback.

``allow_other_distribution=true`` loads a checkpoint even though one of its components now comes
from another distribution than the one that saved it (a plug-in overriding it, see
docs/plugins.md); without it that is an error naming the component and both distributions.

``--help`` (or ``-h``) prints the app's usage; train's is generated from the schemas
(:func:`help_text`): the ``train`` keys with their types and defaults, the recipes available and
the component kinds. ``print_config=true`` (or ``--cfg``) prints the fully resolved recipe as YAML
(defaults filled, versions pinned; a valid recipe file) and exits without training.

Example::

    .venv/bin/python apps/train.py recipe=frmdn_mnist --cfg                # the resolved recipe, nothing trained
    .venv/bin/python apps/train.py recipe=frmdn_mnist train.epochs=1 run_dir=runs/try
    .venv/bin/python apps/train.py run_dir=runs/try resume=auto   # continue it (recipe from the checkpoint)
    .venv/bin/python apps/evaluate.py checkpoint=runs/try         # test metrics of its latest checkpoint
    .venv/bin/python apps/sample.py checkpoint=runs/try n=16      # writes runs/try/checkpoints/<step>/samples-...png
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from eddies.core.errors import EddiesError, RecipeError, TrainingInterrupted, did_you_mean, shorten
from eddies.core.files import obstacle
from eddies.core.recipe import Recipe, TrainConfig, list_recipes, load_recipe, recipes_dir, split_cli
from eddies.core.registry import KINDS
from eddies.core.spec import describe_config, field_table
from eddies.engine.checkpoint import (
    checkpoint_recipe,
    find_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    read_state,
)
from eddies.engine.data import ShardBatchSampler, loader
from eddies.engine.rng import seed_everything
from eddies.engine.trainer import Trainer

TRAIN_USAGE = ("usage: .venv/bin/python apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH] "
               "[data_dir=PATH] [seed=N] [name=NAME] [allow_other_distribution=true] [print_config=true|--cfg] "
               "[dotted.key=value ...]")
EVALUATE_USAGE = ("usage: .venv/bin/python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] "
                  "[batch_size=N] [allow_other_distribution=true] [eval.KEY=VALUE ...]")
SAMPLE_USAGE = ("usage: .venv/bin/python apps/sample.py checkpoint=PATH [n=16] [temperature=T[,T...]] "
                "[out=PATH] [seed=N] [data_dir=PATH] [allow_other_distribution=true]")
MAX_SAMPLES, MAX_TEMPERATURES = 1024, 16  # bounds of sample.py's n= and temperature= (one picture)


def run(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> None:
    """Run an app's ``main(argv)`` (default ``sys.argv[1:]``): ``--help`` prints :func:`help_text`;
    a failure is one ``error:`` line on stderr (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(help_text(main))
        sys.exit(0)
    try:
        main(argv)
    except TrainingInterrupted as err:  # the Trainer saved a checkpoint; its message says where
        _fail(str(err), 130)
    except KeyboardInterrupt:
        _fail("interrupted (Ctrl-C)", 130)
    except EddiesError as err:
        _fail(str(err), 2)
    except OSError as err:
        _fail(os_error_message(err), 2)


def _fail(message: str, status: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def help_text(main: Callable[[list[str]], Any]) -> str:
    """The ``--help`` text of an app: its docstring; for :func:`train_main` followed by the
    ``train`` settings (dotted key, type, default, description: :func:`eddies.core.spec.describe_config`
    of :class:`~eddies.core.recipe.TrainConfig`), the recipes in :func:`~eddies.core.recipe.recipes_dir`
    with their descriptions, and the component kinds."""
    text = inspect.cleandoc(main.__doc__ or "")
    if main is not train_main:
        return text
    recipes = list_recipes()
    width = max((len(name) for name, _ in recipes), default=0)
    return "\n\n".join([
        text,
        "Training settings (override with train.KEY=VALUE; docs/training.md explains each):\n"
        + _indent(field_table(describe_config(TrainConfig))),
        f"Recipes (recipe=NAME; in {recipes_dir()}):\n"
        + (_indent("\n".join(f"{name.ljust(width)}  {about}".rstrip() for name, about in recipes)) or "  (none)"),
        f"Component kinds: {', '.join(KINDS)}. Each kind's components: .venv/bin/python apps/components.py "
        "list KIND; one component's settings: .venv/bin/python apps/components.py show KIND/NAME",
    ])


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else line for line in text.splitlines())


def os_error_message(err: OSError) -> str:
    """``<path>: <reason>`` for an OSError about a path (``str(err)`` when it names none)."""
    if err.filename is None:
        return str(err)
    where = shorten(err.filename, 200) + (f" -> {shorten(err.filename2, 200)}" if err.filename2 is not None else "")
    return f"{where}: {err.strerror or err}"


def parse(argv: list[str], allowed: tuple[str, ...], usage: str) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` into options and overrides; an unknown option names the allowed ones."""
    options, overrides = split_cli(argv)
    for key in options:
        if key not in allowed:
            raise RecipeError(f"unknown option {shorten(key)!r}.{did_you_mean(key, allowed)} Options: "
                              f"{', '.join(allowed)}. {usage}")
    return options, overrides


def _flag(options: dict[str, str], key: str) -> bool:
    """A true/false option (default false)."""
    text = options.get(key, "false").strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise RecipeError(f"{key}={shorten(options[key])!r}: expected true or false", key)
    return text in ("true", "1", "yes")


def _recipe_for_training(options: dict[str, str], overrides: list[str], allow_other: bool) -> Recipe:
    if "recipe" in options:
        return load_recipe(options["recipe"], overrides)
    resume = options.get("resume")
    if resume == "auto" and "run_dir" in options:
        found = latest_checkpoint(Path(options["run_dir"]))
        resume = None if found is None else str(found)
    if resume in (None, "auto"):
        raise RecipeError(f"recipe=NAME|PATH is required (unless resuming from a checkpoint). {TRAIN_USAGE}")
    path, state = read_state(resume)  # the Trainer reads and verifies the tensors when it resumes
    return load_recipe(checkpoint_recipe(state, path, allow_other_distribution=allow_other).to_dict(), overrides)


def train_main(argv: list[str]) -> dict[str, Any]:
    """.venv/bin/python apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH] [data_dir=PATH] [allow_other_distribution=true] [print_config=true|--cfg] [key=value ...]

    Train a recipe (dotted key=value pairs override it; seed=N and name=NAME set the recipe's
    top-level seed and name). run_dir defaults to
    runs/<recipe name>/<UTC timestamp>; resume=auto continues from run_dir's latest checkpoint
    when there is one, resume=PATH from a checkpoint or run directory (the recipe may then be
    omitted: it is read from the checkpoint). allow_other_distribution=true resumes a checkpoint
    whose components now come from another distribution. print_config=true (or --cfg) prints
    the fully resolved recipe as YAML (a recipe file: defaults filled, versions pinned) and
    exits without training. Prints the run directory first and the final metrics as JSON last
    (with "run_dir"). Ctrl-C saves a checkpoint, says where and how to continue, and exits with
    status 130.
    """
    argv = [word for word in argv if word != "--cfg"] + (["print_config=true"] if "--cfg" in argv else [])
    options, overrides = parse(argv, ("recipe", "run_dir", "resume", "data_dir", "seed", "name",
                                      "allow_other_distribution", "print_config"), TRAIN_USAGE)
    overrides = [f"{key}={options.pop(key)}" for key in ("seed", "name") if key in options] + overrides
    allow_other = _flag(options, "allow_other_distribution")
    recipe = _recipe_for_training(options, overrides, allow_other)
    if _flag(options, "print_config"):
        tree = recipe.to_dict()
        print(yaml.safe_dump(tree, sort_keys=False, width=110), end="", flush=True)
        return tree
    trainer = Trainer(recipe, options.get("run_dir"), options.get("resume") or None,
                      data_dir=options.get("data_dir"), allow_other_distribution=allow_other)
    if trainer.is_main:
        print(f"run directory: {trainer.run_dir}", flush=True)
    result = {**trainer.fit(), "run_dir": str(trainer.run_dir)}
    if trainer.is_main:
        print(json.dumps(result))
    return result


def _checkpoint_options(argv: list[str], allowed: tuple[str, ...], usage: str) -> dict[str, str]:
    options, overrides = parse(argv, allowed, usage)
    if overrides:
        raise RecipeError(f"{usage.split()[2]} takes no recipe overrides, got {shorten(' '.join(overrides))}")
    _require_checkpoint(options, usage)
    return options


def _require_checkpoint(options: dict[str, str], usage: str) -> None:
    if "checkpoint" not in options:
        raise RecipeError(f"checkpoint=PATH is required. {usage}")


def integer_option(options: dict[str, str], key: str, default: Any, low: int = 1, high: int | None = None) -> Any:
    """Option ``key`` as an int in [low, high] (``default`` when it is not given); else a RecipeError
    naming it (the value quoted shortened). The apps' integer options, apps/tune.py's too."""
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError:
        raise RecipeError(f"{key}={shorten(options[key])!r} is not a valid int", key) from None
    if value < low:
        raise RecipeError(f"{shorten(f'{key}={value}')}: need {key} >= {low}", key)
    if high is not None and value > high:
        raise RecipeError(f"{shorten(f'{key}={value}')}: need {key} <= {high}", key)
    return value


def _out_file(options: dict[str, str]) -> Path | None:
    """The ``out=`` path (``None`` when not given), refused when it is, or is under, something not a folder."""
    if "out" not in options:
        return None
    out = Path(options["out"])
    if out.is_dir():
        raise RecipeError(f"out={shorten(options['out'])} is a directory; give the path of a file in it", "out")
    if (above := obstacle(out.parent)) is not None:
        raise RecipeError(f"out={shorten(options['out'])}: {shorten(str(above))} is not a directory", "out")
    return out


@contextmanager
def _writing(path: Path, what: str) -> Iterator[None]:
    """An OSError while writing ``path`` becomes one error naming it."""
    try:
        yield
    except OSError as err:
        raise EddiesError(f"cannot write {what} {path}: {err.strerror or err}") from None


def evaluate_main(argv: list[str]) -> dict[str, float]:
    """.venv/bin/python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] [batch_size=N] [allow_other_distribution=true] [eval.KEY=VALUE ...]

    The task's metrics of a checkpoint (a checkpoint folder, a 'latest' pointer or a run
    directory) on a split; printed as JSON, then written to out (default
    <checkpoint>/metrics-<split>.json), so a failed write loses nothing. The task's evaluation
    options are the checkpoint recipe's ``eval`` mapping; ``eval.KEY=VALUE`` overrides one of
    them (``eval.samples=1``: weizmann_horse's prediction from one sample instead of M = 10).
    allow_other_distribution=true evaluates a checkpoint whose components now come from
    another distribution.
    """
    options, overrides = parse(argv, ("checkpoint", "split", "out", "data_dir", "batch_size",
                                      "allow_other_distribution"), EVALUATE_USAGE)
    _require_checkpoint(options, EVALUATE_USAGE)
    given_out, allow_other = _out_file(options), _flag(options, "allow_other_distribution")
    recipe, model, task, state = load_checkpoint(options["checkpoint"], options.get("data_dir"),
                                                 allow_other_distribution=allow_other)
    if overrides:
        wrong = [o for o in overrides if not o.startswith("eval.")]
        if wrong:
            raise RecipeError(f"evaluate.py overrides only the eval options (eval.KEY=VALUE), got {shorten(' '.join(wrong))}")
        recipe = load_recipe(recipe.to_dict(), overrides)
    split = options.get("split", "test")
    batch_size = integer_option(options, "batch_size", recipe.train.eval_batch_size or recipe.train.batch_size)
    task.prepare()
    dataset = task.dataset(split)
    seed_everything(recipe.seed)
    with torch.no_grad():
        metrics = task.evaluate(model, loader(dataset, ShardBatchSampler(len(dataset), batch_size)), **recipe.eval)
    metrics = {"checkpoint_step": state["step"], "split": split, **({"eval": recipe.eval} if overrides else {}),
               **metrics}
    print(json.dumps(metrics), flush=True)
    out = given_out or find_checkpoint(options["checkpoint"]) / f"metrics-{split}.json"
    with _writing(out, "the metrics (printed above) to"):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def sample_main(argv: list[str]) -> Path:
    """.venv/bin/python apps/sample.py checkpoint=PATH [n=16] [temperature=T[,T...]] [out=PATH] [seed=N] [data_dir=PATH] [allow_other_distribution=true]

    Write the task's sample picture of a checkpoint's model (a checkpoint folder, a 'latest'
    pointer or a run directory) and print its path. Without out=, the picture goes to a new file
    in the checkpoint folder, named after the arguments (samples-<n>[-t<T>]-seed<seed>.png,
    numbered -2, -3, ... when that name is taken): an earlier picture is never overwritten.
    Without temperature=, the task's default is used (mnist_rows: one panel at 1.0 and one at
    0.6); several comma-separated temperatures draw one panel each (for tasks whose
    save_samples takes a list, such as mnist_rows). n is at most 1024, temperatures at most 16,
    each finite and > 0; out= must not be a directory. allow_other_distribution=true samples a
    checkpoint whose components now come from another distribution.
    """
    options = _checkpoint_options(
        argv, ("checkpoint", "n", "temperature", "out", "seed", "data_dir", "allow_other_distribution"), SAMPLE_USAGE)
    n = integer_option(options, "n", 16, high=MAX_SAMPLES)
    temperatures = _temperatures(options)
    seed = integer_option(options, "seed", None, low=0, high=2**63 - 1)
    out, allow_other = _out_file(options), _flag(options, "allow_other_distribution")
    recipe, model, task, _ = load_checkpoint(options["checkpoint"], options.get("data_dir"),
                                             allow_other_distribution=allow_other)
    seed = recipe.seed if seed is None else seed
    seed_everything(seed)
    task.prepare()
    if out is None:
        label = f"-t{'+'.join(f'{t:g}' for t in temperatures)}" if temperatures else ""
        out = unused_path(find_checkpoint(options["checkpoint"]) / f"samples-{n}{label}-seed{seed}.png")
    given = {} if temperatures is None else {"temperature": temperatures[0] if len(temperatures) == 1 else temperatures}
    with torch.no_grad(), _writing(out, "the samples to"):
        path = task.save_samples(model, out, n=n, **given)
    print(path)
    return path


def _temperatures(options: dict[str, str]) -> list[float] | None:
    """``temperature=1.0`` or ``temperature=1.0,0.6`` (each finite and > 0); ``None`` when not given."""
    if "temperature" not in options:
        return None
    text = options["temperature"]
    try:
        values = [float(word) for word in text.split(",")]
    except ValueError:
        raise RecipeError(f"temperature={shorten(text)!r} is not a number or a comma-separated list of numbers",
                          "temperature") from None
    if len(values) > MAX_TEMPERATURES:
        raise RecipeError(f"temperature= gives {len(values)} temperatures; at most {MAX_TEMPERATURES}",
                          "temperature")
    if not all(math.isfinite(value) and value > 0 for value in values):
        raise RecipeError(f"temperature={shorten(text)!r}: every temperature must be a finite number > 0",
                          "temperature")
    return values


def unused_path(path: Path) -> Path:
    """``path`` if no file has that name yet, else the first free ``<stem>-2<suffix>``, ``-3``, ..."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
