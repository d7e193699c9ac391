"""The command lines behind ``apps/train.py``, ``apps/evaluate.py`` and ``apps/sample.py``.

Arguments are ``key=value`` words: keys without a dot are the app's options, dotted keys override
the recipe (``train.epochs=2``). An :class:`~eddies.core.errors.EddiesError` (unknown recipe, wrong
override, corrupted checkpoint, missing data, ...) prints ``error: <message>`` on stderr and exits
with status 2, without a traceback; any other exception keeps its traceback.

Example::

    python apps/train.py recipe=frmdn_mnist train.epochs=1 run_dir=runs/try
    python apps/train.py run_dir=runs/try resume=auto          # continue it (recipe from the checkpoint)
    python apps/evaluate.py checkpoint=runs/try                # test metrics of its latest checkpoint
    python apps/sample.py checkpoint=runs/try n=16 out=grid.png
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from eddies.core.errors import EddiesError, RecipeError
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

TRAIN_USAGE = ("usage: python apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH] "
               "[data_dir=PATH] [seed=N] [name=NAME] [dotted.key=value ...]")
EVALUATE_USAGE = ("usage: python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] "
                  "[batch_size=N]")
SAMPLE_USAGE = ("usage: python apps/sample.py checkpoint=PATH [n=16] [temperature=1.0] [out=PATH] "
                "[seed=N] [data_dir=PATH]")


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
            close = difflib.get_close_matches(key, allowed, n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise RecipeError(f"unknown option {key!r}.{hint} Options: {', '.join(allowed)}. {usage}")
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
    """python apps/train.py recipe=NAME|PATH [run_dir=PATH] [resume=auto|PATH] [data_dir=PATH] [key=value ...]

    Train a recipe (dotted key=value pairs override it; seed=N and name=NAME set the recipe's
    top-level seed and name). run_dir defaults to
    runs/<recipe name>/<UTC timestamp>; resume=auto continues from run_dir's latest checkpoint
    when there is one, resume=PATH from a checkpoint or run directory (the recipe may then be
    omitted: it is read from the checkpoint). Prints the final metrics as JSON.
    """
    options, overrides = parse(argv, ("recipe", "run_dir", "resume", "data_dir", "seed", "name"), TRAIN_USAGE)
    overrides = [f"{key}={options.pop(key)}" for key in ("seed", "name") if key in options] + overrides
    recipe = _recipe_for_training(options, overrides)
    trainer = Trainer(recipe, options.get("run_dir"), options.get("resume") or None,
                      data_dir=options.get("data_dir"))
    result = trainer.fit()
    if trainer.is_main:
        print(json.dumps(result))
    return result


def _checkpoint_options(argv: list[str], allowed: tuple[str, ...], usage: str) -> dict[str, str]:
    options, overrides = parse(argv, allowed, usage)
    if overrides:
        raise RecipeError(f"{usage.split()[2]} takes no recipe overrides, got {' '.join(overrides)}")
    if "checkpoint" not in options:
        raise RecipeError(f"checkpoint=PATH is required. {usage}")
    return options


def _number(options: dict[str, str], key: str, kind: type, default: Any) -> Any:
    try:
        return kind(options[key]) if key in options else default
    except ValueError:
        raise RecipeError(f"{key}={options[key]!r} is not a valid {kind.__name__}", key) from None


def evaluate_main(argv: list[str]) -> dict[str, float]:
    """python apps/evaluate.py checkpoint=PATH [split=test] [out=PATH] [data_dir=PATH] [batch_size=N]

    The task's metrics of a checkpoint (a checkpoint folder, a 'latest' pointer or a run
    directory) on a split; printed as JSON and written to out (default
    <checkpoint>/metrics-<split>.json).
    """
    options = _checkpoint_options(argv, ("checkpoint", "split", "out", "data_dir", "batch_size"), EVALUATE_USAGE)
    recipe, model, task, state = load_checkpoint(options["checkpoint"], options.get("data_dir"))
    split = options.get("split", "test")
    batch_size = _number(options, "batch_size", int, recipe.train.eval_batch_size or recipe.train.batch_size)
    task.prepare()
    dataset = task.dataset(split)
    seed_everything(recipe.seed)
    with torch.no_grad():
        metrics = task.evaluate(model, loader(dataset, ShardBatchSampler(len(dataset), batch_size)), **recipe.eval)
    metrics = {"checkpoint_step": state["step"], "split": split, **metrics}
    out = Path(options.get("out") or find_checkpoint(options["checkpoint"]) / f"metrics-{split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics))
    return metrics


def sample_main(argv: list[str]) -> Path:
    """python apps/sample.py checkpoint=PATH [n=16] [temperature=1.0] [out=PATH] [seed=N] [data_dir=PATH]

    Write the task's sample grid of a checkpoint's model to out (default <checkpoint>/samples.png).
    """
    options = _checkpoint_options(
        argv, ("checkpoint", "n", "temperature", "out", "seed", "data_dir"), SAMPLE_USAGE)
    n = _number(options, "n", int, 16)
    temperature = _number(options, "temperature", float, 1.0)
    if n < 1 or temperature <= 0:
        raise RecipeError(f"need n >= 1 and temperature > 0, got n={n}, temperature={temperature}")
    recipe, model, task, _ = load_checkpoint(options["checkpoint"], options.get("data_dir"))
    seed_everything(_number(options, "seed", int, recipe.seed))
    task.prepare()
    out = Path(options.get("out") or find_checkpoint(options["checkpoint"]) / "samples.png")
    with torch.no_grad():
        path = task.save_samples(model, out, n=n, temperature=temperature)
    print(path)
    return path
