"""The options by which a task's ``evaluate`` and ``save_samples`` choose a model's prediction:
``samples`` (the draws ``model.predict`` averages) and ``temperature``, checked once for every
task, and the device the model lives on.

Example::

    >>> prediction_options("weizmann_horse", "evaluate", {"samples": 2}, default_temperature=1.0)
    (2, 1.0)
    >>> prediction_options("cmu_mocap", "evaluate", {"beam": 3}, default_temperature=None)
    Traceback (most recent call last):
    ...
    eddies.core.errors.RecipeError: eval: cmu_mocap.evaluate: unknown options ['beam']; known: samples, temperature
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from eddies.core.errors import RecipeError
from eddies.core.task import check_options


def prediction_options(task: str, where: str, options: dict[str, Any], default_temperature: float | None,
                       default_samples: int = 10) -> tuple[int, float | None]:
    """``(samples, temperature)`` from ``options`` (``where``: ``evaluate``, whose options are the
    recipe's ``eval`` mapping, or ``save_samples``); anything else is a RecipeError naming it.
    ``temperature`` None means the model's own default."""
    options = dict(options)
    samples = options.pop("samples", default_samples)
    temperature = options.pop("temperature", default_temperature)
    path = "eval" if where == "evaluate" else ""
    check_options(f"{task}.{where}", options, ("samples", "temperature"), path)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise RecipeError(f"{task}.{where}: samples must be an integer >= 1, got {samples!r}", path)
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not float(temperature) >= 0):
        raise RecipeError(f"{task}.{where}: temperature must be a number >= 0 or null, got {temperature!r}", path)
    return samples, None if temperature is None else float(temperature)


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
