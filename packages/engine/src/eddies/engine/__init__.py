"""eddies.engine: the trainer on Accelerate, safetensors checkpoints, metrics and plots.

::

    from eddies.core import load_recipe
    from eddies.engine import Trainer, load_checkpoint

    result = Trainer(load_recipe("frmdn_mnist"), "runs/demo").fit()
    recipe, model, task, state = load_checkpoint("runs/demo")

Without a recipe file or a Task class (docs/python-api.md)::

    from eddies.engine import fit, load_model

    run = fit("gaussian_regression", {"x": x, "y": y}, "runs/mine", epochs=5)
    model = load_model("runs/mine")

The engine registers no components (the smoke-test pair ``synthetic_regression`` /
``gaussian_regression`` lives in eddies-tasks and eddies-models), so registry discovery never
imports it. See docs/training.md.
"""

from eddies.engine.checkpoint import find_checkpoint, latest_checkpoint, load_checkpoint, read_checkpoint
from eddies.engine.fit import FitResult, fit, load_model
from eddies.engine.metrics import MetricsLog, plot_curves
from eddies.engine.trainer import Callback, Trainer

__version__ = "0.1.0"

__all__ = [
    "Callback", "FitResult", "MetricsLog", "Trainer", "find_checkpoint", "fit", "latest_checkpoint",
    "load_checkpoint", "load_model", "plot_curves", "read_checkpoint",
]
