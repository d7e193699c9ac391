"""Diagnostic: what a sign error in the flow's log-determinant does to FRMDN's reported NLL.

Reference: Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020,
arXiv:2008.02144 (frmdn.txt).

frmdn.txt eq. 11 writes the change of variables with ``|det ∂f_n^{-1}(z_{n-1}) / ∂z_{n-1}|``
evaluated at the data-side point; read literally, that adds the *inverse* map's log-determinant,
i.e. ``log p(z) - log|det ∂f/∂y|`` instead of ``log p(z) + log|det ∂f/∂y|``. This script trains
the same FRMDN twice on the same data order and noise, once with the correct objective and once
with that flipped sign, and scores both models on the test split with the objective each was
trained on ("reported") and with the correct density ("true")::

    .venv/bin/python benchmarks/frmdn_logdet_sign.py steps=400 model.prior.rank=0
    .venv/bin/python benchmarks/frmdn_logdet_sign.py steps=200,800,3200 recipe=frmdn_mnist_app1

Options: ``recipe`` (frmdn_mnist), ``steps`` (400; a comma-separated list scores each run at
every budget, so one run per objective measures how the reported number moves with training),
``test_images`` (10000). Dotted keys override the recipe. The flipped objective is not a
density: with application 1's s-nets (frmdn_mnist_app1), whose Tanh bounds each log-scale to
(-1, 1), it can undercut the true NLL by at most 2 x 784 nats per image; with application 3's
unbounded s-nets (frmdn_mnist) nothing bounds it.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from eddies.core import load_recipe
from eddies.core.recipe import split_cli
from eddies.engine.data import TrainBatchSampler, loader


def objective(model, batch, sign: float):
    """Per-sequence ``sum_t log p(z_t | c_t) + sign * log|det df/dy_t|`` (sign -1: the flipped one)."""
    prior, logdet = model.log_prob_terms(batch)
    return (prior + sign * logdet).sum(1)


def train(recipe, task, budgets: list[int], sign: float):
    """Yields ``(steps, model)`` when the run reaches each budget (ascending)."""
    torch.manual_seed(recipe.seed)
    model = recipe.model.build(data=task.data_spec())
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    data = task.dataset("train")
    done, epoch = 0, 0
    while done < budgets[-1]:
        sampler = TrainBatchSampler(len(data), recipe.train.batch_size, recipe.seed, epoch)
        for batch in loader(data, sampler):
            optimizer.zero_grad(set_to_none=True)
            loss = -objective(model, batch, sign).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training objective at step {done + 1}")
            loss.backward()
            optimizer.step()
            done += 1
            if done in budgets:
                yield done, model
            if done == budgets[-1]:
                break
        epoch += 1


@torch.no_grad()
def score(model, task, images: int, sign: float) -> dict[str, float]:
    data = torch.utils.data.Subset(task.dataset("test"), range(images))
    reported = true = logdet = 0.0
    for batch in torch.utils.data.DataLoader(data, batch_size=1000):
        prior, ld = model.log_prob_terms(batch)  # once: both objectives are made of these terms
        reported -= (prior + sign * ld).sum(1).sum().item()
        true -= (prior + ld).sum(1).sum().item()
        logdet += ld.sum(1).sum().item()
    n = len(data)
    return {"reported_test_nll": reported / n, "true_test_nll": true / n, "flow_logdet": logdet / n}


def main(argv: list[str]) -> None:
    options, overrides = split_cli(argv)
    recipe = load_recipe(options.get("recipe", "frmdn_mnist"), overrides)
    budgets = sorted({int(b) for b in str(options.get("steps", 400)).split(",")})
    images = int(options.get("test_images", 10_000))
    print(json.dumps({"configuration": {"recipe": recipe.name, "overrides": overrides, "steps": budgets,
                                        "batch_size": recipe.train.batch_size, "test_images": images,
                                        "threads": torch.get_num_threads()}}), flush=True)
    task = recipe.task.build(data_dir=None)
    task.prepare()
    for name, sign in (("correct", 1.0), ("flipped", -1.0)):
        start = time.perf_counter()
        try:
            for steps, model in train(recipe, task, budgets, sign):
                model.eval()
                print(json.dumps({"objective": name, "steps": steps, **score(model, task, images, sign),
                                  "seconds": round(time.perf_counter() - start, 1)}), flush=True)
                model.train()
        except FloatingPointError as error:
            print(json.dumps({"objective": name, "diverged": str(error)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
