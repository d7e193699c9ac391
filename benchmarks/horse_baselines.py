"""The two trivial baselines of the Weizmann Horse protocol, scored by the task's own metrics.

References: Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI 2020,
arXiv:1905.13288 (cglow.txt section 5.2); ../shared/protocols/cglow_horse.md, "Baselines".

- **all-background**: every pixel predicted background (mask 0);
- **mean mask**: the per-pixel mean of the training masks (horse001-180 at S x S), thresholded
  at 0.5, predicted for every image, whatever it shows.

Both go through ``WeizmannHorse.evaluate`` as a model whose ``predict`` returns the fixed mask
in the target's centred space (``mask - 0.5``, tiled to 3 channels), so the prediction rule
(:func:`~eddies.tasks.weizmann_horse.predicted_mask`) and the metrics are exactly those of the
trained models; they have no density (``nll_nats`` is NaN). Prints one JSON line per baseline
and split. Usage::

    .venv/bin/python benchmarks/horse_baselines.py [--size 32] [--splits validation test] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from eddies.tasks.weizmann_horse import CHANNELS, WeizmannHorse


class ConstantMask(nn.Module):
    """Predicts the same (S, S) {0, 1} mask for every image; no density."""

    def __init__(self, mask: Tensor):
        super().__init__()
        self.register_buffer("mask", mask.double())

    def predict(self, batch: dict[str, Tensor], samples: int = 1, temperature: float = 1.0) -> Tensor:
        rows = len(batch["x"])
        return (self.mask - 0.5).expand(rows, CHANNELS, *self.mask.shape)

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError("a constant mask has no density")


def training_mean_mask(task: WeizmannHorse) -> Tensor:
    """The per-pixel mean of the training split's exact masks, thresholded at 0.5 (>= 0.5 is horse)."""
    masks = torch.stack([item["mask"] for item in task.dataset("train")]).double()
    return (masks.mean(dim=0) >= 0.5).long()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--splits", nargs="+", default=["validation", "test"])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    task = WeizmannHorse(size=args.size, data_dir=args.data_dir)
    task.prepare()
    mean_mask = training_mean_mask(task)
    baselines = {"all_background": torch.zeros_like(mean_mask), "mean_mask": mean_mask}
    print(json.dumps({"size": args.size, "mean_mask_foreground_fraction": float(mean_mask.double().mean())}))
    for name, mask in baselines.items():
        for split in args.splits:
            loader = DataLoader(task.dataset(split), batch_size=32)
            metrics = task.evaluate(ConstantMask(mask), loader, samples=1)
            print(json.dumps({"baseline": name, "split": split, **metrics}))


if __name__ == "__main__":
    main()
