"""Table 3 reading 2 (docs/frmdn-mnist.md): the offset a standardised space without its Jacobian
would put on frmdn.txt's MNIST rows.

Reference: Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020,
arXiv:2008.02144 (frmdn.txt; section 5.1, application 2 normalises by a global mean and std).

Standardising ``y -> (y - m) / sigma`` scales the density by ``sigma^D``, so a density reported in
the standardised space without the Jacobian is low by ``D log sigma`` nats (``sum_i log sigma_i``
for a per-pixel standardisation). Reads the training split of ``mnist_rows`` (logit space, the
recipe's dequantisation) and prints, as JSON: the global mean and std, ``784 log sigma``, the
per-pixel ``sum_i log sigma_i``, and the paper's RMDN - FRMDN gaps beside them. Usage::

    .venv/bin/python benchmarks/frmdn_standardisation.py [recipe=frmdn_mnist] [task.KEY=VALUE ...]
"""

from __future__ import annotations

import json
import sys

import torch
from frmdn_table import PAPER  # table 3's MNIST column

from eddies.core import load_recipe
from eddies.core.recipe import split_cli


def main(argv: list[str]) -> None:
    options, overrides = split_cli(argv)
    task = load_recipe(options.get("recipe", "frmdn_mnist"), overrides).task.build(data_dir=None)
    task.prepare()
    loader = torch.utils.data.DataLoader(task.dataset("train"), batch_size=1000)
    n, total, squares = 0, 0.0, 0.0
    for batch in loader:
        y = batch["y"].flatten(1).double()
        n, total, squares = n + len(y), total + y.sum(0), squares + y.square().sum(0)
    dims = len(total)
    pixel_mean = total / n
    pixel_var = squares / n - pixel_mean.square()
    mean = pixel_mean.mean()
    std = (squares.sum() / (n * dims) - mean.square()).sqrt()
    print(json.dumps({
        "images": n, "dims": dims, "global_mean": round(mean.item(), 4), "global_std": round(std.item(), 4),
        "global_offset_nats": round(dims * std.log().item(), 1),
        "per_pixel_offset_nats": round(0.5 * pixel_var.clamp_min(1e-12).log().sum().item(), 1),
        "paper_gaps_rmdn_minus_frmdn": {str(r): round(PAPER["rmdn", r] - PAPER["frmdn", r], 2) for r in range(4)},
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
