"""Tables of the particles and exchange-rate results beside the published rows (issue 13).

MotionFlow (Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391) tables 2 and 5, as the
protocol page ../shared/protocols/motionflow_particles_exchange.md gives them. Reads
``apps/evaluate.py`` outputs (``--runs LABEL=FILE ...``, the test split) and the test lines of
``benchmarks/motion_baselines.py`` (``--baselines FILE``, JSON lines) and prints one markdown
table: for ``particles`` metrics MSE at prediction steps 1, 15 and 25 (per burn-in found), for
``exchange_rate`` metrics MSE (raw units) and CRPS-sum. ``--curves PNG`` also draws the
particles' MSE against the prediction step. Usage::

    .venv/bin/python benchmarks/forecast_results.py --runs motionflow=mf-test.json \\
        --baselines baselines.jsonl [--curves curves.png]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

STEP_KEY = re.compile(r"^mse_burn_in_(?P<b>\d+)_step_(?P<k>\d+)$")
PAPER_PARTICLES = {  # table 2: MSE at steps 1 / 15 / 25 (normalised units)
    "NRI": (1.99e-5, 1.50e-3, 3.93e-3), "dNRI": (1.77e-5, 3.48e-4, 5.36e-4), "MemDNRI": (1.26e-5, 2.98e-4, 4.56e-4),
    "NRI-NSI": (1.15e-5, 3.20e-4, 4.56e-4), "MotionFlow": (1.55e-5, 2.88e-4, 4.32e-4),
}
PAPER_EXCHANGE = {  # table 5: MSE (rows reconstructed from the paper's text)
    "Vec-LSTM ind-scaling": 1.6e-4, "Vec-LSTM low-rank copula": 1.9e-4, "GP copula": 1.7e-4, "LSTM Real-NVP": 2.4e-4,
    "LSTM MAF": 3.8e-4, "Transformer MAF": 3.4e-4, "MotionFlow": 1.7e-4,
}


def read_runs(items: list[str], baselines: str | None) -> list[tuple[str, dict]]:
    """(label, test metrics) from LABEL=FILE evaluate outputs (the last ``=`` splits) and the
    baselines' test lines, in that order."""
    runs = []
    for item in items:
        label, _, path = item.rpartition("=")
        runs.append((label, json.loads(Path(path).read_text())))
    for line in Path(baselines).read_text().splitlines() if baselines else []:
        record = json.loads(line)
        if record.get("split") == "test":
            runs.append((record["baseline"], record))
    return runs


def particles_table(runs: list[tuple[str, dict]]) -> list[str]:
    lines = ["| model | burn-in | MSE step 1 | MSE step 15 | MSE step 25 |", "|---|---|---|---|---|"]
    for label, metrics in runs:
        for b in sorted({int(m["b"]) for m in map(STEP_KEY.match, metrics) if m}):
            values = [metrics[f"mse_burn_in_{b}_step_{k}"] for k in (1, 15, 25)]
            lines.append(f"| {label} | {b} | " + " | ".join(f"{v:.3g}" for v in values) + " |")
    lines += [f"| {name} (paper, table 2) | 25? | " + " | ".join(f"{v:.3g}" for v in values) + " |"
              for name, values in PAPER_PARTICLES.items()]
    return lines


def exchange_table(runs: list[tuple[str, dict]]) -> list[str]:
    lines = ["| model | MSE | CRPS-sum | MSE of the median | diverged paths |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {m['mse']:.3g} | {m['crps_sum']:.4f} | {m.get('mse_median', float('nan')):.3g} | "
              f"{m.get('diverged', float('nan')):.3f} |" for label, m in runs]
    lines += [f"| {name} (paper, table 5) | {v:.2g} | | | |" for name, v in PAPER_EXCHANGE.items()]
    return lines


def plot_curves(runs: list[tuple[str, dict]], path: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2), layout="constrained")
    ax = figure.subplots()
    for label, metrics in runs:
        points = sorted((int(m["b"]), int(m["k"]), metrics[m.string]) for m in map(STEP_KEY.match, metrics) if m)
        for b in sorted({p[0] for p in points}):
            steps = [(k, v) for bb, k, v in points if bb == b]
            ax.plot(*zip(*steps, strict=True), marker="o", markersize=2, label=f"{label}, burn-in {b}")
    ax.set_yscale("log"), ax.set_xlabel("prediction step"), ax.set_ylabel("MSE (normalised units)")
    ax.grid(alpha=0.3), ax.legend(fontsize=6)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=[], metavar="LABEL=FILE")
    parser.add_argument("--baselines", default=None)
    parser.add_argument("--curves", default=None)
    args = parser.parse_args()
    runs = read_runs(args.runs, args.baselines)
    if not runs:
        raise SystemExit("forecast_results: no --runs and no test lines in --baselines")
    particles = all(any(STEP_KEY.match(k) for k in m) for _, m in runs)
    print("\n".join(particles_table(runs) if particles else exchange_table(runs)))
    if args.curves and particles:
        plot_curves(runs, args.curves)


if __name__ == "__main__":
    main()
