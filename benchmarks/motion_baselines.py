"""The deterministic baselines of motion prediction and forecasting, scored by a task's own metrics
(CMU mocap by default; particles and exchange rates with ``--recipe``).

References: Martinez, Black & Romero, CVPR 2017, arXiv:1705.02445 (zero velocity); MotionFlow:
Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt section 5.3);
../shared/protocols/motionflow_cmu.md, "Baselines".

- **zero_velocity**: every predicted frame repeats the last input frame;
- **constant_velocity**: the last input frame moved on by ``k`` times its change from the
  frame before, ``x_T + k (x_T - x_{T-1})`` for output frame ``k``, in the task's (normalised,
  hence affinely equivalent) exp-map space.

Both are the registered model kinds (:mod:`eddies.models.motion_baselines`; ``--baseline SPEC``,
repeatable, scores others or other settings instead, each a model spec in YAML, e.g.
``'{type: constant_velocity, hold: [2, 3]}'`` for the particles' physical rule), built for the task's
:meth:`~eddies.core.Task.data_spec` and scored by ``CMUMocap.evaluate``, so the windows, the
de-normalisation, the joints copied from the truth, forward kinematics and the MPJPE and angle
errors are exactly those of the trained models. The task is the recipe's ``task`` (only that
section is read; default ``recipes/motionflow_cmu.yaml``, or ``{type: cmu_mocap}`` with its
defaults when that file does not exist; a ``--recipe`` given explicitly must exist), with the
optional ``key=value`` overrides applied to the recipe first. Prints one JSON line with the task
settings, then one per baseline and split: its metrics, the number of windows and the settings
the numbers depend on (actions, protocols, input and output frames, burn-in). The baselines are
deterministic: each is scored with ``samples=1``. A bad recipe, setting or data folder ends the
script with its one-line error. Usage::

    .venv/bin/python benchmarks/motion_baselines.py [--recipe PATH] [--splits validation test]
        [--baseline SPEC ...] [--data-dir DIR] [--batch-size 64] [--set task.limit.test=4 --set ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from torch.utils.data import DataLoader

from eddies.core import DataError, RecipeError, build, validate_spec
from eddies.core.recipe import recipe_tree

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = ROOT / "recipes" / "motionflow_cmu.yaml"
FALLBACK_TASK = {"type": "cmu_mocap"}
BASELINES = ("zero_velocity", "constant_velocity")
SETTINGS = ("actions", "protocols", "input_frames", "output_frames", "burn_in", "context_length", "prediction_length")


def task_spec(recipe: str | None, overrides: list[str]) -> tuple[dict, str | None]:
    """The task section of ``recipe`` (default :data:`DEFAULT_RECIPE`, or :data:`FALLBACK_TASK`
    when that file is missing), overrides applied, and the recipe file it came from."""
    if recipe is None and not DEFAULT_RECIPE.is_file():
        tree, source = recipe_tree({"task": dict(FALLBACK_TASK)}, overrides)
    else:
        tree, source = recipe_tree(recipe or DEFAULT_RECIPE, overrides)
    if "task" not in tree:
        raise SystemExit(f"{source}: the recipe has no task section")
    return tree["task"], source


def label(spec: str | dict) -> str:
    """A baseline's name as given: its type, then any settings (``constant_velocity {"hold": [2, 3]}``)."""
    if isinstance(spec, str):
        return spec
    settings = {k: v for k, v in spec.items() if k != "type"}
    return spec["type"] + (f" {json.dumps(settings)}" if settings else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=None, help=f"recipe whose task is scored (default {DEFAULT_RECIPE})")
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    parser.add_argument("--baseline", dest="baselines", action="append", default=None, metavar="SPEC",
                        help=f"a model spec in YAML (repeatable; default: {', '.join(BASELINES)})")
    parser.add_argument("--data-dir", default=None, help="cache root (default $EDDIES_DATA or ~/.cache/eddies)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override, e.g. task.limit.test=4 (repeatable)")
    args = parser.parse_args()
    try:
        run(args)
    except (RecipeError, DataError) as err:
        raise SystemExit(f"motion_baselines: {err}") from None


def run(args: argparse.Namespace) -> None:
    spec, source = task_spec(args.recipe, args.overrides)
    spec = validate_spec(spec, "tasks", "task", source)
    settings = spec.to_dict()
    print(json.dumps({"recipe": source, "task": settings}))
    task = spec.build(data_dir=args.data_dir)
    task.prepare()
    data = task.data_spec()
    context = {key: settings[key] for key in SETTINGS if key in settings}
    for text in args.baselines or BASELINES:
        given = yaml.safe_load(text)
        model_spec = validate_spec(given, "models", "baseline")
        model = build(model_spec, "models", data=data)
        for split in args.splits:
            dataset = task.dataset(split)
            metrics = task.evaluate(model, DataLoader(dataset, batch_size=args.batch_size), samples=1)
            print(json.dumps({"baseline": label(given), "split": split, "windows": len(dataset),
                              **context, **metrics}))


if __name__ == "__main__":
    main()
