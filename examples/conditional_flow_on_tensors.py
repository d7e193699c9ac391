"""A conditional normalizing flow on one's own tensors: no recipe file, no Task class.

    .venv/bin/python examples/conditional_flow_on_tensors.py [RUN_DIR]

The data: a condition x uniform in [-1, 1] and a target y on a noisy ring whose radius grows
with x, y = (1 + x / 2) (cos θ, sin θ) + 0.05 ε with θ uniform: p(y | x) is a ring, which no
Gaussian regression can fit. A c-Glow-style flow (four conditional Glow steps over the 2-vector y,
each actnorm and coupling parameterised by a small MLP of x) learns it with ``eddies.engine.fit``;
the run directory (default ``runs/examples/ring``) holds the checkpoints, ``curves.png`` and
``samples.png`` (data against model samples for the same conditions), like ``apps/train.py``'s.
``examples/sample_from_checkpoint.py RUN_DIR`` then draws from it. ``EDDIES_EXAMPLE_TINY=1``
trains a few steps only (the test suite's setting). See docs/python-api.md.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from eddies.engine import fit

TINY = os.environ.get("EDDIES_EXAMPLE_TINY", "") not in ("", "0")


def ring(n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` draws of (x, y): x ~ U(-1, 1), y = (1 + x/2)(cos θ, sin θ) + 0.05 ε."""
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(n, 1, generator=g) - 1
    theta = 2 * math.pi * torch.rand(n, 1, generator=g)
    y = (1 + x / 2) * torch.cat([theta.cos(), theta.sin()], dim=1) + 0.05 * torch.randn(n, 2, generator=g)
    return {"x": x, "y": y}


def main(run_dir: str) -> None:
    hidden = [16] if TINY else [64, 64]
    step = {"type": "glow_step", "actnorm": "cond_actnorm",
            "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": hidden}}}
    model = {"type": "conditional_flow", "flow": {"type": "chain", "layers": [step] * (2 if TINY else 4)},
             "samples": 16}
    n = 512 if TINY else 8000
    data = {"train": ring(n, seed=0), "validation": ring(n // 4, seed=1)}
    run = fit(model, data, run_dir, epochs=1 if TINY else 30, batch_size=128,
              optimizer={"type": "adam", "lr": 3e-3}, threads=1, log_every=50)
    print(f"run directory: {run.run_dir}")
    print(f"validation NLL {run.metrics['val_nll']:.3f} nats, MSE of the sample-mean prediction "
          f"{run.metrics['val_mse']:.3f} (its best, E[y | x] = 0, gives about 0.54)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/examples/ring")
