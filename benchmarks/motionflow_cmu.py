"""Benchmark: training step and rollout time of MotionFlow on CMU mocap (``temporal_flow``).

Reference: Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion
Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt sections 4-5).

For each recipe (default: ``motionflow_cmu``, ``motionflow_cmu_no_masks``,
``motionflow_cmu_normal_prior``, ``motionflow_cmu_paper``) the model is built for the
``cmu_mocap`` layout (x: 25 input frames, y: 25 output frames, each frame (3, 24): exp-map
components by joints) and timed on random inputs of that shape (no data is read):

- **train step**: ``model.loss`` (teacher forcing over the recipe's ``train_frames``) forward,
  backward and one step of the recipe's optimizer, at the recipe's batch (``--batch`` overrides);
- **rollout**: ``model.predict`` over the 25 output frames for ``--rows`` windows, the mean of
  ``--samples`` trajectories (drawn as one batch) and the temperature-0 mode path; each step
  encodes the sliding window once (eq. 5), draws z_t from the prior and inverts the flow;
- the encoder alone on ``rows x samples`` windows (one rollout step's share).

Each timing is the median over ``--repeats`` rounds after one warm-up round (the variants
alternate within a round). Usage::

    .venv/bin/python benchmarks/motionflow_cmu.py [--recipes motionflow_cmu ...] [--batch N]
        [--rows 64] [--samples 10] [--repeats 3] [--threads 2]

``--recipes motionflow_cmu --rows 4 --samples 2 --repeats 1`` is a quick smoke run (not for figures).
"""

from __future__ import annotations

import argparse

import torch
from _timing import optimizer_step, timed

from eddies.core import DataSpec, load_recipe

RECIPES = ["motionflow_cmu", "motionflow_cmu_no_masks", "motionflow_cmu_normal_prior", "motionflow_cmu_paper"]
FRAME = (3, 24)


def bench(name: str, args) -> None:
    recipe = load_recipe(name)
    task = recipe.task.config
    data = DataSpec(shapes={"x": (task.input_frames, *FRAME), "y": (task.output_frames, *FRAME)})
    torch.manual_seed(0)
    model = recipe.model.build(data=data)
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    batch_size = args.batch or recipe.train.batch_size
    g = torch.Generator().manual_seed(0)
    batch = {k: 0.3 * torch.randn(batch_size, *s, generator=g) for k, s in data.shapes.items()}
    rows = {k: 0.3 * torch.randn(args.rows, *s, generator=g) for k, s in data.shapes.items()}
    config = recipe.model.config
    params = sum(p.numel() for p in model.parameters())
    flow_steps = len(config.flow.config.layers) if hasattr(config.flow.config, "layers") else "?"
    print(f"\n{name}: {params / 1e6:.2f} M parameters; K = {flow_steps}; encoder "
          f"{config.encoder.name if config.encoder else 'none'}; prior {config.prior.name}; "
          f"train_frames {config.train_frames}; batch {batch_size}; threads {torch.get_num_threads()}")

    (train,) = timed([lambda: optimizer_step(model, optimizer, batch)], args.repeats)
    print(f"  train step: {train * 1e3:8.1f} ms  ({batch_size / train:7.1f} sequences/s)")
    model.eval()
    with torch.no_grad():
        steps = [lambda: model.predict(rows, samples=args.samples, temperature=1.0),
                 lambda: model.predict(rows, temperature=0.0)]
        windows = rows["x"][:, -model.window :].repeat(args.samples, 1, 1, 1)
        steps.append(lambda: model.encode(windows))
        mean, mode, encode = timed(steps, args.repeats)
    frames = task.output_frames
    print(f"  rollout of {frames} frames, mean of {args.samples} draws, {args.rows} windows: {mean:7.2f} s "
          f"({mean / args.rows * 1e3:6.1f} ms per window)")
    print(f"  rollout, temperature-0 mode: {mode:7.2f} s ({mode / args.rows * 1e3:6.1f} ms per window)")
    print(f"  encoder alone on {args.rows * args.samples} windows: {encode * 1e3:8.1f} ms "
          f"(x {frames} steps = {encode * frames:5.2f} s of the rollout)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    parser.add_argument("--batch", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--rows", type=int, default=64, help="windows rolled out")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.recipes:
        bench(name, args)


if __name__ == "__main__":
    main()
