"""Sweep a recipe's hyper-parameters with Ray Tune: `eddies tune`'s command line; see docs/sweeps.md.

    .venv/bin/python apps/tune.py recipe=frmdn_mnist sweep=frmdn_mnist_small [options] [key=value ...]
    .venv/bin/python apps/tune.py --help      # the options (eddies.engine.tune_cli)
"""

from __future__ import annotations

import sys

from eddies.engine.tune_cli import tune_main as main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
