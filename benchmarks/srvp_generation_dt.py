"""A trained SRVP checkpoint generating at a finer Euler step than it was trained with.

Reference: Franceschi, Delasalles, Chen, Lamprier & Gallinari, "Stochastic Latent Residual Video
Prediction", ICML 2020, arXiv:2002.09219 (srvp.txt). Section 3.2 (eq. 3, y_t+dt = y_t + dt
f(y_t, z_t+1)) and section 4.4: the residual dynamics are an Euler discretisation of an ODE, so
the model can be run at dt/2 (twice the steps, every other state decoded;
:meth:`eddies.models.latent_dynamics_vae.LatentDynamicsVAE.generate`).
``apps/evaluate.py`` overrides only the ``eval`` options, so this script sets
``model.generation_dt`` on the loaded model and scores the split with the task's metrics and
the recipe's ``eval`` options, once per ``--dt``, each under the recipe's seed. Prints one JSON
line per step size. Usage::

    .venv/bin/python benchmarks/srvp_generation_dt.py --checkpoint runs/srvp_smmnist/checkpoints/best \\
        --dt 1 0.5 [--split test] [--batch-size 64] [--out dt.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from eddies.engine.checkpoint import load_checkpoint
from eddies.engine.data import ShardBatchSampler, loader
from eddies.engine.rng import seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--dt", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help="also append the lines to this file")
    args = parser.parse_args()
    recipe, model, task, state = load_checkpoint(args.checkpoint, args.data_dir)
    if not hasattr(model, "generation_dt"):
        raise SystemExit(f"{args.checkpoint}: model kind {recipe.model.type!r} has no generation_dt (not latent_dynamics_vae)")
    task.prepare()
    dataset = task.dataset(args.split)
    for dt in args.dt:
        model.generation_dt = dt
        seed_everything(recipe.seed)
        with torch.no_grad():
            metrics = task.evaluate(model, loader(dataset, ShardBatchSampler(len(dataset), args.batch_size)), **recipe.eval)
        line = json.dumps({"checkpoint_step": state["step"], "split": args.split, "generation_dt": dt, **metrics})
        print(line, flush=True)
        if args.out:
            with Path(args.out).open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
