"""Benchmark: gmm_lowrank log_prob + backward against a dense MultivariateNormal mixture.

Runs the low-rank-precision mixture (determinant lemma, eddies.priors.gmm_lowrank) and the dense
reference (``MixtureSameFamily`` of ``MultivariateNormal(precision_matrix=D + U U^T)``, which
factorises a d x d matrix per component) on the same parameters, timing forward + backward.

Parameters are either shared by the batch ("shared", a free-parameter prior) or one set per row
("per-row", as when an RNN produces them per time step); per-row dense references above 512 MB
are skipped.

First, the FRMDN recipe's shapes (recipes/frmdn_mnist.yaml: batch 256 x 28 rows of d = 28, K = 10,
the LSTM's h_t of H = 32 through the mlp [32] tanh head, per-row D and U): the whole registered
prior's log_prob + backward for r = 0..3, the ranks alternating within each round, median CPU
time of the process (robust to other jobs on a shared machine), and the ratio r / r = 0
(issue 16; the figures before and after are in docs/priors.md). Usage::

    .venv/bin/python benchmarks/priors.py [--repeats 7] [--threads 1] [--only recipe|dense]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from eddies.core import build
from eddies.priors import LowRankPrecisionMixture

CASES = [(256, 10, 28, r) for r in range(4)] + [(64, 10, 784, 3)]
DENSE_LIMIT = 512 * 2**20


def leaves(batch: int, K: int, d: int, r: int, per_row: bool) -> list[torch.Tensor]:
    lead = batch if per_row else 1
    return [
        torch.randn(lead, K).requires_grad_(),
        torch.randn(lead, K, d).requires_grad_(),
        (0.5 + torch.rand(lead, K, d)).requires_grad_(),
        (torch.randn(lead, K, d, r) / d**0.5).requires_grad_(),
    ]


def lowrank(z, logits, means, diag, factor):
    return LowRankPrecisionMixture(logits, means, diag, factor).log_prob(z)


def dense(z, logits, means, diag, factor):
    """Batch (1, K) components broadcast over the rows of ``z``; (n, K) when per row."""
    precision = torch.diag_embed(diag) + factor @ factor.transpose(-1, -2)
    comps = MultivariateNormal(means, precision_matrix=precision)
    return MixtureSameFamily(Categorical(logits=logits), comps).log_prob(z)


def timed(fn, z, params, repeats: int) -> float:
    """Best (minimum) seconds of log_prob + backward over ``repeats`` runs after one warm-up; the
    minimum is the figure least disturbed by other processes on a shared machine."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        fn(z, *params).sum().backward()
        if i:
            times.append(time.perf_counter() - start)
        for p in params:
            p.grad = None
    return min(times)


def recipe_ratios(repeats: int) -> None:
    """r = 1..3 against r = 0 at the frmdn_mnist recipe's shapes (see the module docstring)."""
    rows, K, d, H = 256 * 28, 10, 28, 32
    head = {"type": "mlp", "hidden": [32], "activation": "tanh"}
    priors = [build({"type": "gmm_lowrank", "components": K, "rank": r, "head": head}, "priors",
                    shape=(d,), context_shape=(H,)) for r in range(4)]
    z, h = torch.randn(rows, d), torch.randn(rows, H, requires_grad=True)
    times = [[] for _ in priors]
    for i in range(repeats + 1):
        for prior, record in zip(priors, times, strict=True):
            start = time.process_time()
            prior.log_prob(z, h).sum().backward()
            if i:
                record.append(time.process_time() - start)
            prior.zero_grad(set_to_none=True)
            h.grad = None
    med = [statistics.median(t) for t in times]
    print(f"gmm_lowrank at the frmdn_mnist shapes: {rows} rows (batch 256 x 28), K={K}, d={d}, H={H}, "
          f"head mlp [32] tanh, per-row D and U; median CPU time of {repeats} rounds, log_prob + backward")
    for r, t in enumerate(med):
        print(f"  r={r}: {1e3 * t:8.1f} ms  ratio vs r=0 {t / med[0]:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="intra-op threads; 1 gives stable figures on a shared machine (2 threads stall under load)",
    )
    parser.add_argument("--only", choices=["recipe", "dense"], default=None, help="run one section")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.only != "dense":
        recipe_ratios(args.repeats)
    if args.only == "recipe":
        return
    print(f"torch {torch.__version__}, float32, CPU threads {torch.get_num_threads()}, "
          f"best of {args.repeats} runs, log_prob + backward")
    print(f"{'params':8} {'batch':>5} {'K':>3} {'d':>4} {'r':>2} {'lowrank ms':>11} {'dense ms':>9} {'dense/lowrank':>14}")
    for per_row in (False, True):
        for batch, K, d, r in CASES:
            params = leaves(batch, K, d, r, per_row)
            z = torch.randn(batch, d)
            ours = timed(lowrank, z, params, args.repeats)
            dense_bytes = 4 * (batch if per_row else 1) * K * d * d * 4  # precision, its factor, grads
            if dense_bytes > DENSE_LIMIT:
                ref, ratio = "skipped", f"(~{dense_bytes / 2**30:.1f} GB)"
            else:
                with torch.no_grad():
                    err = (lowrank(z, *params) - dense(z, *params)).abs().max().item()
                assert err < 1e-2 * d, f"low-rank and dense disagree by {err}"
                t_ref = timed(dense, z, params, args.repeats)
                ref, ratio = f"{1e3 * t_ref:9.2f}", f"{t_ref / ours:14.1f}"
            label = "per-row" if per_row else "shared"
            print(f"{label:8} {batch:5d} {K:3d} {d:4d} {r:2d} {1e3 * ours:11.2f} {ref:>9} {ratio:>14}")


if __name__ == "__main__":
    main()
