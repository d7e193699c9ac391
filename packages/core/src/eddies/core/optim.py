"""Optimizers and learning-rate schedules named in recipes (``train.optimizer``, ``train.scheduler``).

Optimizers are built with runtime argument ``params``; schedules with ``optimizer`` and
``total_steps`` (the number of optimizer steps the run plans), and are stepped once per
optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from pydantic import Field

from eddies.core.registry import ComponentConfig, register


class AdamConfig(ComponentConfig):
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)


@register("optimizers", "adam", config=AdamConfig, summary="Adam (Kingma & Ba 2015).")
def adam(params: Iterable[Any], **cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, **cfg)


@register("optimizers", "adamw", config=AdamConfig, summary="AdamW, decoupled weight decay.")
def adamw(params: Iterable[Any], **cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, **cfg)


class SGDConfig(ComponentConfig):
    lr: float = Field(1e-2, gt=0)
    momentum: float = Field(0.0, ge=0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)


@register("optimizers", "sgd", config=SGDConfig, summary="Stochastic gradient descent.")
def sgd(params: Iterable[Any], **cfg: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, **cfg)


class WarmupCosineConfig(ComponentConfig):
    warmup_steps: int = Field(0, ge=0)
    min_factor: float = Field(0.0, ge=0, le=1, description="final lr as a fraction of the base lr")


@register(
    "schedulers", "cosine", config=WarmupCosineConfig,
    summary="Linear warm-up, then cosine decay to min_factor * lr over the run.",
)
def cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_factor: float):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class StepConfig(ComponentConfig):
    step_size: int = Field(..., ge=1, description="optimizer steps between decays")
    gamma: float = Field(0.5, gt=0)


@register("schedulers", "step", config=StepConfig, summary="Multiply lr by gamma every step_size steps.")
def step(optimizer: torch.optim.Optimizer, total_steps: int, step_size: int, gamma: float):
    del total_steps
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


class ExponentialConfig(ComponentConfig):
    gamma: float = Field(..., gt=0, description="per-step lr factor")


@register("schedulers", "exponential", config=ExponentialConfig, summary="lr *= gamma every step.")
def exponential(optimizer: torch.optim.Optimizer, total_steps: int, gamma: float):
    del total_steps
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
