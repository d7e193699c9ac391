"""eddies.engine: the trainer on Accelerate, safetensors checkpoints, metrics and plots.

::

    from eddies.core import load_recipe
    from eddies.engine import Trainer, load_checkpoint

    result = Trainer(load_recipe("frmdn_mnist"), "runs/demo").fit()
    recipe, model, task, state = load_checkpoint("runs/demo")

See docs/training.md.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Imported on first use (PEP 562): registry discovery imports eddies.engine.synthetic, which
# must not pull in Accelerate and matplotlib through this package's __init__.
_EXPORTS = {
    "Callback": "trainer", "Trainer": "trainer", "MetricsLog": "metrics", "plot_curves": "metrics",
    "find_checkpoint": "checkpoint", "latest_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eddies.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"eddies.engine.{_EXPORTS[name]}"), name)
