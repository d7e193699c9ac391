"""Training throughput through the Trainer against a bare PyTorch loop on the same batches.

    .venv/bin/python benchmarks/engine_overhead.py [recipe=tests/recipes/tiny_frmdn.yaml] [steps=30 (even)] [threads=2]
        [data_dir=PATH] [dotted.key=value ...]

Both loops run the recipe's model, optimizer and batch size for ``steps`` optimizer steps after
two warm-up steps, in one process, loading their batches with the same DataLoader; the bare loop
is ``model.loss(next(batches))["loss"].backward(); opt.step(); opt.zero_grad()``. The trainer's figure is ``samples_per_s`` of its
``metrics/steps.jsonl`` (loading and stepping, evaluation excluded), so the difference is the
engine's per-step cost: micro-batch split, gradient-norm check, cross-process reduction, logging.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from eddies.core.recipe import load_recipe, split_cli
from eddies.engine import MetricsLog, Trainer
from eddies.engine.data import TrainBatchSampler, loader


def main(argv: list[str]) -> None:
    options, overrides = split_cli(argv)
    steps, threads = int(options.get("steps", 30)), int(options.get("threads", 2))
    recipe = load_recipe(options.get("recipe", "tests/recipes/tiny_frmdn.yaml"),
                         [*overrides, f"train.threads={threads}", f"train.max_steps={steps + 2}",
                          "train.log_every=2", "train.samples=false", "train.epochs=1000"])
    print(f"recipe={recipe.name} model={recipe.model.name} batch_size={recipe.train.batch_size} "
          f"steps={steps} threads={threads} torch={torch.__version__}")

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, Path(tmp) / "run", data_dir=options.get("data_dir"))
        trainer.fit()
        rates = [r["samples_per_s"] for r in MetricsLog(Path(tmp) / "run").read("steps") if r["step"] > 2]
        engine = len(rates) / sum(1 / r for r in rates)  # total samples / total time, warm-up excluded

    torch.manual_seed(recipe.seed)
    model = recipe.model.build(data=trainer.spec)
    opt = recipe.train.optimizer.build(params=model.parameters())
    sampler = TrainBatchSampler(len(trainer.train_set), recipe.train.batch_size, recipe.seed, 0)
    model.loss(next(iter(loader(trainer.train_set, sampler))))  # data-dependent init, as the trainer does
    elapsed, done = 0.0, 0
    while done < steps + 2:
        batches = iter(loader(trainer.train_set, sampler))
        for _ in range(len(sampler)):
            tick = time.perf_counter()
            model.loss(next(batches))["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            elapsed += time.perf_counter() - tick if done >= 2 else 0.0
            done += 1
            if done == steps + 2:
                break
    bare = steps * recipe.train.batch_size / elapsed
    print(json.dumps({"trainer_samples_per_s": round(engine, 1), "bare_loop_samples_per_s": round(bare, 1),
                      "trainer_over_bare": round(engine / bare, 3)}))


if __name__ == "__main__":
    main(sys.argv[1:])
