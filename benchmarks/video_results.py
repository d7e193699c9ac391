"""Tables and per-frame curves of the moving-MNIST results (SRVP, issue 14; MotionRNN, issue 15).

Reads ``apps/evaluate.py`` outputs (``--runs LABEL=FILE ...``) and the lines of
``benchmarks/motion_baselines.py`` (``--baselines LABEL=FILE``: the test line of that JSON-lines
file, labelled) and prints one markdown table of the ``moving_mnist`` metrics
(:mod:`eddies.tasks.video_metrics`): the mean over predicted frames and the 95 % interval
(``1.96 std / sqrt(N)`` over sequences) of PSNR, SSIM and the per-frame MSE summed over pixels,
for the best of the samples (``best``) and one random sample (``random``). ``--paper srvp``
adds the rows of srvp.txt table 2, ``--paper predrnn`` PredRNN's published figures (both as
../shared/protocols/ gives them; their scale is 64 x 64, not the reduced 32 x 32).
``--curves PNG`` draws each metric against the predicted frame, one panel per ``--metrics``
name; ``--per-frame`` also prints those curves as tables (one row per model, one column per
predicted frame). References: Franceschi, Delasalles, Chen, Lamprier & Gallinari, "Stochastic
Latent Residual Video Prediction", ICML 2020, arXiv:2002.09219 (srvp.txt); Wu, Yao, Wang & Long,
"MotionRNN: A Flexible Model for Video Prediction with Spacetime-Varying Motions", CVPR 2021,
arXiv:2103.02243. Usage::

    .venv/bin/python benchmarks/video_results.py --runs srvp=srvp-test.json \\
        --baselines copy-last=copy.jsonl --metrics psnr_best ssim_best psnr_random \\
        --paper srvp --curves psnr.png
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

PAPER = {
    # srvp.txt table 2, PSNR / SSIM (stochastic, deterministic), 64 x 64, best of 100
    "srvp": ["| SRVP (paper, table 2, 64 x 64) | stochastic 16.90 / 0.7789; deterministic 18.25 / 0.8300 |",
             "| SRVP, MLP dynamics (paper) | 16.55 / 0.7693; 16.70 / 0.7876 |",
             "| SRVP without z (paper) | -; 14.99 / 0.4757 |"],
    # PredRNN's moving-MNIST figures quoted by ../shared/protocols/motionrnn_mmnist.md (64 x 64)
    "predrnn": ["| PredRNN (published, 64 x 64) | MSE 56.8, SSIM 0.867 |"],
}
STEP = re.compile(r"^(?P<metric>.+)_step_(?P<k>\d+)$")


def read_runs(runs: list[str], baselines: list[str]) -> list[tuple[str, dict]]:
    """(label, test metrics) from LABEL=FILE evaluate outputs, then the test line of each
    LABEL=FILE baseline output (the last ``=`` splits)."""
    out = []
    for item in runs:
        label, _, path = item.rpartition("=")
        out.append((label, json.loads(Path(path).read_text())))
    for item in baselines:
        label, _, path = item.rpartition("=")
        tests = [json.loads(line) for line in Path(path).read_text().splitlines()
                 if line.strip() and json.loads(line).get("split") == "test"]
        if len(tests) != 1:
            raise SystemExit(f"{path}: expected one test line, found {len(tests)}")
        out.append((label, tests[0]))
    return out


def table(runs: list[tuple[str, dict]], metrics: list[str]) -> list[str]:
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for label, values in runs:
        cells = []
        for name in metrics:
            mean, ci = values.get(f"{name}_mean"), values.get(f"{name}_ci95")
            digits = 4 if name.startswith("ssim") else 2
            cells.append("n/a" if mean is None else f"{mean:.{digits}f} ± {ci:.{digits}f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def per_frame(values: dict, name: str) -> list[tuple[int, float]]:
    """``(k, value)`` of ``<name>_step_<k>``, in frame order."""
    return sorted((int(m["k"]), values[key]) for key in values if (m := STEP.match(key)) and m["metric"] == name)


def per_frame_table(runs: list[tuple[str, dict]], name: str) -> list[str]:
    frames = max((len(per_frame(values, name)) for _, values in runs), default=0)
    digits = 3 if name.startswith("ssim") else 1 if name.startswith("mse") else 2
    lines = [f"| {name} by predicted frame | " + " | ".join(str(k) for k in range(1, frames + 1)) + " |",
             "|---|" + "---|" * frames]
    lines += [f"| {label} | " + " | ".join(f"{v:.{digits}f}" for _, v in per_frame(values, name)) + " |"
              for label, values in runs]
    return lines


def curves(runs: list[tuple[str, dict]], metrics: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        for label, values in runs:
            steps = per_frame(values, name)
            if steps:
                ax.plot(*zip(*steps, strict=True), marker="o", markersize=3, label=label)
        ax.set(xlabel="predicted frame", title=name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"curves: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=[], metavar="LABEL=FILE")
    parser.add_argument("--baselines", nargs="*", default=[], metavar="LABEL=FILE")
    parser.add_argument("--metrics", nargs="+", default=["psnr_best", "ssim_best", "psnr_random", "ssim_random"])
    parser.add_argument("--paper", choices=sorted(PAPER), default=None)
    parser.add_argument("--curves", default=None, metavar="PNG")
    parser.add_argument("--per-frame", action="store_true", help="print the per-frame values as tables")
    args = parser.parse_args()
    runs = read_runs(args.runs, args.baselines)
    print("\n".join(table(runs, args.metrics)))
    for name in args.metrics if args.per_frame else []:
        print("\n" + "\n".join(per_frame_table(runs, name)))
    if args.paper:
        print("\n| published | figures |\n|---|---|\n" + "\n".join(PAPER[args.paper]))
    if args.curves:
        curves(runs, args.metrics, args.curves)


if __name__ == "__main__":
    main()
