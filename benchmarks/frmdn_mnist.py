"""Speed of the default FRMDN recipe on MNIST rows: training and evaluation images/s, and the
wall-clock time to reach a validation NLL.

    .venv/bin/python benchmarks/frmdn_mnist.py                                  # defaults below
    .venv/bin/python benchmarks/frmdn_mnist.py target=2000 budget=600 model.prior.rank=0

Options (``key=value``): ``recipe`` (frmdn_mnist), ``steps`` (timed training steps, 20),
``warmup`` (untimed steps first, 3), ``eval_images`` (validation images scored for the evaluation
speed, 5000), ``target`` (validation NLL in nats to reach, 2000; 0 skips that phase),
``budget`` (at most this many optimizer steps to reach it, 800), ``eval_every`` (steps between
validation evaluations in that phase, 50), ``run_dir`` (runs/bench_frmdn_mnist). Dotted keys
override the recipe. The training phase runs the same work per step as the trainer (data
loading, ``model.loss``, backward, Adam; ``train.compile=true`` compiles the loss, and the
warm-up steps then include the compilation); the time-to-target phase runs the trainer itself
(``eddies.engine``), so its time includes its evaluations and checkpoints, and data preparation
is timed separately. Everything is printed as JSON, configuration first.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from itertools import islice

import torch

from eddies.core import load_recipe
from eddies.core.recipe import split_cli

DEFAULTS = {"recipe": "frmdn_mnist", "steps": "20", "warmup": "3", "eval_images": "5000", "target": "2000",
            "budget": "800", "eval_every": "50", "run_dir": "runs/bench_frmdn_mnist"}


def report(**values) -> None:
    print(json.dumps(values), flush=True)


def training_speed(recipe, task, steps: int, warmup: int) -> float:
    from eddies.engine.data import TrainBatchSampler, loader
    from eddies.engine.trainer import LossModule

    model = recipe.model.build(data=task.data_spec())
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    data = task.dataset("train")
    batches = iter(loader(data, TrainBatchSampler(len(data), recipe.train.batch_size, recipe.seed, 0),
                          recipe.train.num_workers))
    model.train()
    loss = LossModule(model)  # what the trainer runs, compiled as it is with train.compile
    if recipe.train.compile:
        loss = torch.compile(loss)
    for i, batch in enumerate(islice(batches, warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss(batch)["loss"].backward()
        optimizer.step()
    return steps * recipe.train.batch_size / (time.perf_counter() - start)


@torch.no_grad()
def evaluation_speed(recipe, task, images: int) -> float:
    model = recipe.model.build(data=task.data_spec()).eval()
    data = task.dataset("validation")
    size = recipe.train.eval_batch_size or recipe.train.batch_size
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(min(images, len(data)))),
                                         batch_size=size)
    model.log_prob(next(iter(loader)))  # warm-up
    start, seen = time.perf_counter(), 0
    for batch in loader:
        model.log_prob(batch)
        seen += len(batch["y"])
    return seen / (time.perf_counter() - start)


def time_to_target(recipe_name: str, overrides: list[str], target: float, budget: int, every: int, run_dir: str):
    from eddies.engine.trainer import Trainer

    recipe = load_recipe(recipe_name, [*overrides, f"train.max_steps={budget}", f"train.eval_every={every}",
                                       "train.epochs=1000", "train.early_stopping=null", "train.samples=false"])
    curve = []

    class Watch:
        def on_evaluate(self, trainer, metrics, checkpoint_dir):
            curve.append({"step": trainer.step, "seconds": round(time.perf_counter() - start, 1),
                          "val_nll": round(metrics["val_nll"], 2)})
            if metrics["val_nll"] <= target:
                trainer.request_stop(f"reached val_nll <= {target}")

    start = time.perf_counter()
    Trainer(recipe, run_dir, callbacks=[Watch()]).fit()
    reached = next((point for point in curve if point["val_nll"] <= target), None)
    return reached, curve


def main(argv: list[str]) -> None:
    options, overrides = split_cli(argv)
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"unknown options {sorted(unknown)}; options: {', '.join(DEFAULTS)}")
    opt = {**DEFAULTS, **options}
    recipe = load_recipe(opt["recipe"], overrides)
    if recipe.train.threads is not None:
        torch.set_num_threads(recipe.train.threads)
    torch.manual_seed(recipe.seed)
    report(configuration={**opt, "overrides": overrides, "batch_size": recipe.train.batch_size,
                          "eval_batch_size": recipe.train.eval_batch_size, "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                          "machine": platform.processor() or platform.machine(),
                          "load_average_1min": os.getloadavg()[0]})
    task = recipe.task.build(data_dir=None)
    start = time.perf_counter()
    task.prepare()
    task.dataset("train")
    report(data_preparation_seconds=round(time.perf_counter() - start, 2))
    report(train_images_per_s=round(training_speed(recipe, task, int(opt["steps"]), int(opt["warmup"])), 1))
    report(eval_images_per_s=round(evaluation_speed(recipe, task, int(opt["eval_images"])), 1))
    if float(opt["target"]) > 0:
        reached, curve = time_to_target(opt["recipe"], overrides, float(opt["target"]), int(opt["budget"]),
                                        int(opt["eval_every"]), opt["run_dir"])
        report(target_val_nll=float(opt["target"]), reached=reached, curve=curve)
    report(load_average_1min_end=os.getloadavg()[0])


if __name__ == "__main__":
    main(sys.argv[1:])
