"""The ``eddies`` console script: one command, five subcommands, the apps' command lines.

::

    eddies train recipe=frmdn_mnist train.epochs=2       # apps/train.py
    eddies evaluate checkpoint=runs/frmdn_mnist/<run>    # apps/evaluate.py
    eddies sample checkpoint=runs/frmdn_mnist/<run> n=10 # apps/sample.py
    eddies tune recipe=frmdn_mnist sweep=frmdn_mnist_small   # apps/tune.py (the `tune` extra)
    eddies components list flows                         # apps/components.py
    eddies --help | eddies COMMAND --help

Each subcommand runs the same function as its script in ``apps/`` (the scripts are thin wrappers
around them), with the same ``key=value`` words, output and exit statuses (2: an ``error:`` line;
130: interrupted). A recipe name resolves in ``$EDDIES_RECIPES``, else the nearest ``recipes/``
folder at or above the working directory, else the recipes installed with the ``eddies``
distribution (:mod:`eddies.core.packaged`), so ``pip install eddies`` runs
``eddies train recipe=frmdn_mnist`` anywhere. The console script is declared by eddies-engine
(``[project.scripts]``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, NamedTuple


class Command(NamedTuple):
    """A subcommand: where its function lives, and whether it goes through :func:`eddies.engine.cli.run`."""

    module: str
    function: str
    summary: str
    via_run: bool  # True: ``function(argv)`` raises on errors and cli.run prints them; False: returns the status


COMMANDS: dict[str, Command] = {
    "train": Command("eddies.engine.cli", "train_main", "train a recipe (prints the run directory, then the final JSON)",
                     True),
    "evaluate": Command("eddies.engine.cli", "evaluate_main", "a checkpoint's metrics on a split, as JSON", True),
    "sample": Command("eddies.engine.cli", "sample_main", "write a checkpoint's sample picture", True),
    "tune": Command("eddies.engine.tune_cli", "tune_main", "sweep a recipe with Ray Tune (extra: eddies-engine[tune])",
                    False),
    "components": Command("eddies.engine.components", "components_main",
                          "list the registered components, or show one's settings", False),
}


def usage() -> str:
    """``eddies --help``: the subcommands, one line each."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name.ljust(width)}  {command.summary}" for name, command in COMMANDS.items()]
    return ("usage: eddies COMMAND [key=value ...]   (eddies COMMAND --help: its options)\n\ncommands:\n"
            + "\n".join(lines) + "\n\nSee docs/training.md, docs/sweeps.md and docs/registry-and-recipes.md.")


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``eddies COMMAND ...`` (``argv`` defaults to ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        from eddies.core.errors import did_you_mean

        print(f"error: unknown command {name!r}.{did_you_mean(name, tuple(COMMANDS))} Commands: "
              f"{', '.join(COMMANDS)} (eddies --help)", file=sys.stderr)
        return 2
    command = COMMANDS[name]
    function: Callable[[list[str]], Any] = getattr(importlib.import_module(command.module), command.function)
    if not command.via_run:
        return int(function(rest))
    from eddies.engine.cli import run

    sys.argv = [f"eddies {name}", *rest]  # cli.run reads the words (and --help) from sys.argv
    run(function)  # exits with 2 or 130 on an error, printing it
    return 0


__all__ = ["COMMANDS", "Command", "main", "usage"]
