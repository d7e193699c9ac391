"""Shared helpers of the engine tests: tiny synthetic recipes and throwaway components."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from eddies.core import DataError, get_registry, load_recipe, register
from eddies.core.registry import ComponentConfig
from eddies.models import GaussianRegression
from eddies.tasks.synthetic import SyntheticRegression


def tiny_recipe(train: dict[str, Any] | None = None, **top: Any):
    """96 training samples, batch 16 (6 steps per epoch), 2 epochs, Adam lr 0.05, one thread."""
    tree = {
        "name": "tiny",
        "seed": 3,
        "task": {"type": "synthetic_regression", "n_train": 96, "n_validation": 40, "n_test": 32},
        "model": {"type": "gaussian_regression"},
        "train": {"batch_size": 16, "epochs": 2, "optimizer": {"type": "adam", "lr": 0.05},
                  "threads": 1, "log_every": 1, "samples": False, **(train or {})},
        **top,
    }
    return load_recipe(tree)


class NaNConfig(ComponentConfig):
    bad_calls: list[int] = []  # training calls (0-based) whose loss is NaN
    always: bool = False


class NaNModel(GaussianRegression):
    """gaussian_regression whose training loss is NaN on chosen calls (or always)."""

    def __init__(self, data, bad_calls, always):
        super().__init__(data)
        self.bad_calls, self.always, self.calls = set(bad_calls), always, 0

    def loss(self, batch):
        out = super().loss(batch)
        if self.training and torch.is_grad_enabled():  # not the trainer's data-dependent init pass
            if self.always or self.calls in self.bad_calls:
                out["loss"] = out["loss"] * math.nan
            self.calls += 1
        return out


class MissingTask(SyntheticRegression):
    def prepare(self) -> None:
        raise DataError(f"raw data for 'missing_data' not found in {self.data_dir}: run the download step")


@pytest.fixture
def scoped():
    """Throwaway components: models 'nan_model', tasks 'missing_data' (removed afterwards)."""
    with get_registry("models").scoped(), get_registry("tasks").scoped():
        register("models", "nan_model", config=NaNConfig, summary="NaN losses on demand (tests).")(NaNModel)
        task = get_registry("tasks").get("synthetic_regression")
        register("tasks", "missing_data", config=task.config, summary="Missing raw data (tests).")(MissingTask)
        yield
