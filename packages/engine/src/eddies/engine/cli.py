"""The command lines behind ``apps/train.py``, ``apps/evaluate.py`` and ``apps/sample.py``.

Arguments are ``key=value`` words: keys without a dot are the app's options, dotted keys override
the recipe (``train.epochs=2``). An :class:`~eddies.core.errors.EddiesError` (unknown recipe, wrong
override, corrupted checkpoint, missing data, ...) prints ``error: <message>`` on stderr and exits
with status 2, without a traceback; any other exception keeps its traceback.

Example::

    .venv/bin/python apps/train.py recipe=frmdn_mnist train.epochs=1 run_dir=runs/try
    .venv/bin/python apps/train.py run_dir=runs/try resume=auto   # continue it (recipe from the checkpoint)
    .venv/bin/python apps/evaluate.py checkpoint=runs/try         # test metrics of its latest checkpoint
    .venv/bin/python apps/sample.py checkpoint=runs/try n=16      # writes runs/try/checkpoints/<step>/samples-...png
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from eddies.core.errors import EddiesError, RecipeError, did_you_mean
from eddies.core.recipe import Recipe, load_recipe, split_cli
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
               "[data_dir=PATH] [seed=N] [name=NAME] [dotted.key=value ...]")
EVALUATE_USAGE = ("usage: .venv/bin/python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] "
                  "[batch_size=N] [eval.KEY=VALUE ...]")
SAMPLE_USAGE = ("usage: .venv/bin/python apps/sample.py checkpoint=PATH [n=16] [temperature=T[,T...]] "
                "[out=PATH] [seed=N] [data_dir=PATH]")


def run(main: Callable[[list[str]], Any]) -> None:
    """Run an app's ``main(argv)``; EddiesError -> one message on stderr and exit status 2."""
    argv = sys.argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        print(main.__doc__)
        sys.exit(0)
    try:
        main(argv)
    except EddiesError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def parse(argv: list[str], allowed: tuple[str, ...], usage: str) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` into options and overrides; an unknown option names the allowed ones."""
    options, overrides = split_cli(argv)
    for key in options:
        if key not in allowed:
            raise RecipeError(f"unknown option {key!r}.{did_you_mean(key, allowed)} Options: "
                              f"{', '.join(allowed)}. {usage}")
    return options, overrides


def _recipe_for_training(options: dict[str, str], overrides: list[str]) -> Recipe:
    if "recipe" in options:
        return load_recipe(options["recipe"], overrides)
    resume = options.get("resume")
    if resume == "auto" and "run_dir" in options:
        found = latest_checkpoint(Path(options["run_dir"]))
        resume = None if found is None else str(found)
    if resume in (None, "auto"):
        raise RecipeError(f"recipe=NAME|PATH is required (unless resuming from a checkpoint). {TRAIN_USAGE}")
    path, state = read_state(resume)  # the Trainer reads and verifies the tensors when it resumes
    return load_recipe(checkpoint_recipe(state, path).to_dict(), overrides)


def train_main(argv: list[str]) -> dict[str, Any]:
    """.venv/bin/python apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH] [data_dir=PATH] [key=value ...]

    Train a recipe (dotted key=value pairs override it; seed=N and name=NAME set the recipe's
    top-level seed and name). run_dir defaults to
    runs/<recipe name>/<UTC timestamp>; resume=auto continues from run_dir's latest checkpoint
    when there is one, resume=PATH from a checkpoint or run directory (the recipe may then be
    omitted: it is read from the checkpoint). Prints the run directory first and the final
    metrics as JSON last.
    """
    options, overrides = parse(argv, ("recipe", "run_dir", "resume", "data_dir", "seed", "name"), TRAIN_USAGE)
    overrides = [f"{key}={options.pop(key)}" for key in ("seed", "name") if key in options] + overrides
    recipe = _recipe_for_training(options, overrides)
    trainer = Trainer(recipe, options.get("run_dir"), options.get("resume") or None,
                      data_dir=options.get("data_dir"))
    if trainer.is_main:
        print(f"run directory: {trainer.run_dir}", flush=True)
    result = trainer.fit()
    if trainer.is_main:
        print(json.dumps(result))
    return result


def _checkpoint_options(argv: list[str], allowed: tuple[str, ...], usage: str) -> dict[str, str]:
    options, overrides = parse(argv, allowed, usage)
    if overrides:
        raise RecipeError(f"{usage.split()[2]} takes no recipe overrides, got {' '.join(overrides)}")
    _require_checkpoint(options, usage)
    return options


def _require_checkpoint(options: dict[str, str], usage: str) -> None:
    if "checkpoint" not in options:
        raise RecipeError(f"checkpoint=PATH is required. {usage}")


def _number(options: dict[str, str], key: str, kind: type, default: Any) -> Any:
    try:
        return kind(options[key]) if key in options else default
    except ValueError:
        raise RecipeError(f"{key}={options[key]!r} is not a valid {kind.__name__}", key) from None


def evaluate_main(argv: list[str]) -> dict[str, float]:
    """.venv/bin/python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] [batch_size=N] [eval.KEY=VALUE ...]

    The task's metrics of a checkpoint (a checkpoint folder, a 'latest' pointer or a run
    directory) on a split; printed as JSON, then written to out (default
    <checkpoint>/metrics-<split>.json), so a failed write loses nothing. The task's evaluation
    options are the checkpoint recipe's ``eval`` mapping; ``eval.KEY=VALUE`` overrides one of
    them (``eval.samples=1``: weizmann_horse's prediction from one sample instead of M = 10).
    """
    options, overrides = parse(argv, ("checkpoint", "split", "out", "data_dir", "batch_size"), EVALUATE_USAGE)
    _require_checkpoint(options, EVALUATE_USAGE)
    recipe, model, task, state = load_checkpoint(options["checkpoint"], options.get("data_dir"))
    if overrides:
        wrong = [o for o in overrides if not o.startswith("eval.")]
        if wrong:
            raise RecipeError(f"evaluate.py overrides only the eval options (eval.KEY=VALUE), got {' '.join(wrong)}")
        recipe = load_recipe(recipe.to_dict(), overrides)
    split = options.get("split", "test")
    batch_size = _number(options, "batch_size", int, recipe.train.eval_batch_size or recipe.train.batch_size)
    task.prepare()
    dataset = task.dataset(split)
    seed_everything(recipe.seed)
    with torch.no_grad():
        metrics = task.evaluate(model, loader(dataset, ShardBatchSampler(len(dataset), batch_size)), **recipe.eval)
    metrics = {"checkpoint_step": state["step"], "split": split, **({"eval": recipe.eval} if overrides else {}),
               **metrics}
    print(json.dumps(metrics), flush=True)
    out = Path(options.get("out") or find_checkpoint(options["checkpoint"]) / f"metrics-{split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def sample_main(argv: list[str]) -> Path:
    """.venv/bin/python apps/sample.py checkpoint=PATH [n=16] [temperature=T[,T...]] [out=PATH] [seed=N] [data_dir=PATH]

    Write the task's sample picture of a checkpoint's model (a checkpoint folder, a 'latest'
    pointer or a run directory) and print its path. Without out=, the picture goes to a new file
    in the checkpoint folder, named after the arguments (samples-<n>[-t<T>]-seed<seed>.png,
    numbered -2, -3, ... when that name is taken): an earlier picture is never overwritten.
    Without temperature=, the task's default is used (mnist_rows: one panel at 1.0 and one at
    0.6); several comma-separated temperatures draw one panel each (for tasks whose
    save_samples takes a list, such as mnist_rows).
    """
    options = _checkpoint_options(
        argv, ("checkpoint", "n", "temperature", "out", "seed", "data_dir"), SAMPLE_USAGE)
    n = _number(options, "n", int, 16)
    temperatures = _temperatures(options)
    if n < 1:
        raise RecipeError(f"n={n}: need n >= 1", "n")
    recipe, model, task, _ = load_checkpoint(options["checkpoint"], options.get("data_dir"))
    seed = _number(options, "seed", int, recipe.seed)
    seed_everything(seed)
    task.prepare()
    if "out" in options:
        out = Path(options["out"])
    else:
        label = f"-t{'+'.join(f'{t:g}' for t in temperatures)}" if temperatures else ""
        out = unused_path(find_checkpoint(options["checkpoint"]) / f"samples-{n}{label}-seed{seed}.png")
    given = {} if temperatures is None else {"temperature": temperatures[0] if len(temperatures) == 1 else temperatures}
    with torch.no_grad():
        path = task.save_samples(model, out, n=n, **given)
    print(path)
    return path


def _temperatures(options: dict[str, str]) -> list[float] | None:
    """``temperature=1.0`` or ``temperature=1.0,0.6`` (each > 0); ``None`` when not given."""
    if "temperature" not in options:
        return None
    text = options["temperature"]
    try:
        values = [float(word) for word in text.split(",")]
    except ValueError:
        raise RecipeError(f"temperature={text!r} is not a number or a comma-separated list of numbers",
                          "temperature") from None
    if not all(value > 0 for value in values):
        raise RecipeError(f"temperature={text!r}: every temperature must be > 0", "temperature")
    return values


def unused_path(path: Path) -> Path:
    """``path`` if no file has that name yet, else the first free ``<stem>-2<suffix>``, ``-3``, ..."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
