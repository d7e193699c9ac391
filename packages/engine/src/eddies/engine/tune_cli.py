"""Sweep a recipe's hyper-parameters with Ray Tune; see docs/sweeps.md.

    eddies tune recipe=frmdn_mnist sweep=frmdn_mnist_small [options] [key=value ...]
    .venv/bin/python apps/tune.py recipe=frmdn_mnist sweep=frmdn_mnist_small [options] [key=value ...]

options (no dot in the key):
    recipe=NAME|PATH     the recipe (recipes/NAME.yaml or a file)
    sweep=NAME|PATH      the sweep (recipes/sweeps/NAME.yaml or a file)
    run_dir=PATH         where the sweep writes (default runs/sweeps/RECIPE-SWEEP); the same
                         command with the same run_dir resumes an interrupted sweep
    address=auto|H:P     attach to a running Ray cluster instead of starting a local one
    num_cpus=N           CPUs of the local Ray instance, 1 to 4096 (default: all of this machine)
    verbose=0|1          1 also shows Ray's progress table and the trials' output
dotted keys override the recipe (train.epochs=3); keys under sweep. override the sweep file
(sweep.num_samples=8, sweep.scheduler.max_t=5, sweep.space.train.optimizer.lr={type: choice, values: [0.01]},
sweep.fixed.train.epochs=3: after sweep.space. or sweep.fixed. the rest is one recipe key).
A mistake an override caused is reported as coming from that command-line word.

While the trials run, prints a status line per ASHA rung (FIFO: per evaluation) and per ended
trial: elapsed time, trial, its values, the metric, its status, trials ended and the ETA (an upper
bound under ASHA, which stops trials early). Then prints the table of trials and writes
RUN_DIR/trials.csv, RUN_DIR/best_recipe.yaml (for
`eddies train recipe=RUN_DIR/best_recipe.yaml`) and RUN_DIR/best.json.

Ray Tune is the `tune` extra of eddies-engine (`python -m pip install "eddies-engine[tune]"`);
without it the command says so (status 2) before doing anything else.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from eddies.core import EddiesError
from eddies.core.errors import shorten
from eddies.core.recipe import recipe_tree, split_cli, validate_recipe
from eddies.engine.cli import integer_option, os_error_message
from eddies.engine.sweep import load_sweep
from eddies.engine.tune import run_sweep  # imports Ray only when a sweep starts

OPTIONS = ("recipe", "sweep", "run_dir", "address", "num_cpus", "verbose")
MISSING_RAY = ("sweeps need Ray Tune, which is not installed: python -m pip install \"eddies-engine[tune]\" "
               "(the engine's `tune` extra; a single training run does not need it)")


def ray_installed() -> bool:
    """Whether the ``ray`` distribution is installed (its metadata, not ``find_spec("ray")``: a
    folder named ``ray`` in the working directory, such as Ray's own /tmp/ray, imports as a
    namespace package)."""
    try:
        metadata.distribution("ray")
    except metadata.PackageNotFoundError:
        return False
    return True


def tune_main(argv: list[str]) -> int:
    """Run ``eddies tune`` / ``apps/tune.py`` with the words ``argv``; returns the exit status
    (0: a best trial, 1: no trial succeeded, 2: an error line on stderr). See the module docstring."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if not ray_installed():
        print(f"error: {MISSING_RAY}", file=sys.stderr)
        return 2
    if not argv:
        print(f"error: recipe= and sweep= are required\n{__doc__}", file=sys.stderr)
        return 2
    try:
        options, overrides = split_cli(argv)
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown or "recipe" not in options or "sweep" not in options:
            problem = (f"unknown option(s) {', '.join(shorten(k, 40) for k in unknown[:5])}" if unknown
                       else "recipe= and sweep= are required")
            raise EddiesError(f"{problem}; options are {', '.join(OPTIONS)} (see --help)")
        sweep_words = [w.removeprefix("sweep.") for w in overrides if w.startswith("sweep.")]
        recipe_words = [w for w in overrides if not w.startswith("sweep.")]

        tree, source = recipe_tree(options["recipe"], recipe_words)
        validate_recipe(tree, source, recipe_words)  # an override's mistake names the override
        sweep = load_sweep(options["sweep"], sweep_words, prefix="sweep.")
        run_dir = Path(options.get("run_dir") or Path("runs") / "sweeps" / f"{tree['name']}-{sweep.name}")
        given = {key: value for key, value in options.items() if value.strip()}  # num_cpus= is the default
        report = run_sweep(
            tree, sweep, run_dir, source=source, address=options.get("address") or None,
            num_cpus=integer_option(given, "num_cpus", None, low=1, high=4096),
            verbose=integer_option(given, "verbose", 0, low=0, high=1),
        )
    except EddiesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a run_dir or storage the user named that cannot be written
        if err.filename is None:
            raise
        print(f"error: {os_error_message(err)}", file=sys.stderr)
        return 2
    print(report.table())
    for label, file in report.files.items():
        print(f"{label}: {file}")
    failed = [r for r in report.rows if r.status == "error"]
    if failed:
        print(f"{len(failed)} trial(s) failed; Ray's error.txt in each trial's directory says why: "
              + ", ".join(r.path for r in failed), file=sys.stderr)
    return 0 if report.best is not None else 1


__all__ = ["MISSING_RAY", "OPTIONS", "ray_installed", "tune_main"]
