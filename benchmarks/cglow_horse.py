"""Benchmark: training step and prediction time of the Weizmann Horse models (c-Glow, MotionFlow).

References: Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI 2020,
arXiv:1905.13288 (cglow.txt).

For each recipe (default: ``cglow_horse_paper``, ``cglow_horse``, ``motionflow_horse``) the model
is built from the recipe for the task's image size (``weizmann_horse``, S = 32: x and y of
shape (3, 32, 32)) and timed on random inputs of that shape (no data is read):

- **train step**: ``model.loss`` forward, backward and one step of the recipe's optimizer, at
  ``--batch`` images (default 16, the reduced recipe's batch; the paper's is 2), as images/s;
- **predict, M draws** (cglow.txt eq. 4, ``--samples`` = M = 10): ``model.predict(batch,
  samples=M)``, which encodes ``x`` once and inverts the flow once on ``M·B`` rows, against
  ``M`` separate ``model.sample(batch)`` calls, which encode ``x`` again for every draw (what a
  loop over samples costs); and the encoder alone (recipes with ``model.encoder``).

With ``model.encoder`` null (c-Glow) every conditional layer's conditioning network reads ``x``
itself, repeated for the ``M·B`` rows of the batched inverse, so in both timings those networks
run once per draw; only an encoder (MotionFlow's eq. 5) is shared by the draws.

Each timing is the median over ``--repeats`` rounds after one warm-up round; within a round the
variants alternate, so a load change on a shared machine hits them alike. The configuration
(L, K, conditioning-net sizes, coupling channels, parameters, threads) is printed with the
numbers. Usage::

    .venv/bin/python benchmarks/cglow_horse.py [--recipes cglow_horse_paper cglow_horse ...]
        [--batch 16] [--samples 10] [--repeats 3] [--threads 2] [--size 32]

``--size 16 --batch 2 --samples 2 --repeats 1`` is a quick smoke run (not for figures).
"""

from __future__ import annotations

import argparse

import torch
from _timing import optimizer_step, timed

from eddies.core import DataSpec, load_recipe

RECIPES = ["cglow_horse_paper", "cglow_horse", "motionflow_horse"]
SIZES = {"channels", "width", "resolution", "kernel_sizes", "dilation", "zero_init_all"}  # fields printed


def describe(recipe) -> str:
    """L, K and the sizes of the conditioning and coupling networks, read from the recipe."""
    model = recipe.model.config
    flow = model.flow.config
    step = flow.step.config
    actnorm, invconv, coupling = step.actnorm.config, step.invconv.config, step.coupling.config

    def net(spec) -> str:
        if spec is None:
            return "default"
        fields = {k: v for k, v in spec.config.model_dump(mode="json").items() if k in SIZES}
        return f"{spec.name}({', '.join(f'{k}={v}' for k, v in fields.items())})"

    encoder = "none (each CN reads x)" if model.encoder is None else net(model.encoder)
    return (f"L={flow.levels} K={flow.steps}; encoder: {encoder}; actnorm CN: {net(actnorm.net)}; "
            f"1x1 CN: {net(invconv.net)}; coupling NN: {net(coupling.net)}, CN: {net(coupling.context_net)}")


def bench(name: str, args) -> None:
    recipe = load_recipe(name)
    shape = (3, args.size, args.size)
    data = DataSpec(shapes={"y": shape, "x": shape}, target="y", condition="x")
    torch.manual_seed(0)
    model = recipe.model.build(data=data)
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, *shape, generator=generator)
    mask = (torch.rand(args.batch, 1, args.size, args.size, generator=generator) > 0.5).float()
    y = mask.expand(-1, 3, -1, -1) - 0.5 + (torch.rand(args.batch, *shape, generator=generator) - 0.5)
    batch = {"x": x, "y": y}
    params = sum(p.numel() for p in model.parameters())
    print(f"\n{name}: {params / 1e6:.2f} M parameters; {describe(recipe)}")
    print(f"  optimizer {recipe.train.optimizer.name} {recipe.train.optimizer.config.model_dump()}; "
          f"x, y of shape {shape}; batch {args.batch}; M = {args.samples}; threads {torch.get_num_threads()}")

    (train,) = timed([lambda: optimizer_step(model, optimizer, batch)], args.repeats)
    print(f"  train step: {train * 1e3:8.1f} ms  ({args.batch / train:7.1f} images/s)")

    model.eval()
    with torch.no_grad():
        def predict_once():
            model.predict(batch, samples=args.samples, temperature=1.0)

        def predict_per_sample():
            torch.stack([model.sample(batch, temperature=1.0) for _ in range(args.samples)]).mean(0)

        steps = [predict_once, predict_per_sample]
        if model.encoder is not None:
            steps.append(lambda: model.encoder(x))
        results = timed(steps, args.repeats)
    once, per_sample = results[:2]
    print(f"  predict M={args.samples}, encoder once (one batched inverse of M*B rows): "
          f"{once * 1e3:8.1f} ms  ({args.batch / once:7.1f} images/s)")
    print(f"  predict M={args.samples}, encoder per sample (M sample calls of B rows):  "
          f"{per_sample * 1e3:8.1f} ms  ({args.batch / per_sample:7.1f} images/s)")
    if model.encoder is not None:
        print(f"  the encoder alone on B images: {results[2] * 1e3:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=RECIPES)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--samples", type=int, default=10, help="M of eq. 4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, help="image side S")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.recipes:
        bench(name, args)


if __name__ == "__main__":
    main()
