"""The CMU mocap results table and MPJPE-against-horizon curves from metrics JSON files.

Reference: Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion
Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt table 3).

Each argument is ``LABEL=PATH``: a JSON file written by ``apps/evaluate.py`` (``out=PATH``) on a
``cmu_mocap`` checkpoint; ``--baselines FILE`` adds the test-split lines of
``benchmarks/motion_baselines.py``'s output saved to ``FILE`` (labelled by baseline). Prints, per protocol, a markdown table with one row per label and action: MPJPE (mm) at 80,
160, 320, 400, 560 and 1000 ms; with ``--curves PNG`` also draws every label's curves with
:func:`eddies.tasks.cmu_mocap.plot_mpjpe_curves`. Usage::

    .venv/bin/python benchmarks/cmu_results.py "MotionFlow (mean of 10)=runs/a/metrics-test.json" \\
        [--baselines baselines.jsonl] [--protocols motionflow ltd8] [--curves curves.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eddies.tasks.cmu_mocap import CURVE_KEY, HORIZONS_MS, plot_mpjpe_curves


def read(text: str) -> tuple[str, dict[str, float]]:
    label, sep, path = text.rpartition("=")
    if not sep:
        raise SystemExit(f"error: {text!r} is not LABEL=PATH")
    return label, numbers(json.loads(Path(path).read_text()))


def numbers(metrics: dict) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def baselines(path: str) -> dict[str, dict[str, float]]:
    """The test-split lines of motion_baselines.py's output, by baseline name."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {line["baseline"]: numbers(line) for line in lines if line.get("split") == "test"}


def table(runs: dict[str, dict[str, float]], protocol: str) -> list[str]:
    actions = sorted({m["action"] for values in runs.values() for k in values if (m := CURVE_KEY.match(k))
                      and m["protocol"] == protocol and m["action"] != "mean"})
    lines = [f"| model ({protocol}) | action | " + " | ".join(f"{ms} ms" for ms in HORIZONS_MS) + " |",
             "|---|---|" + "---|" * len(HORIZONS_MS)]
    for label, values in runs.items():
        for action in actions:
            cells = [values.get(f"mpjpe_{protocol}_{action}_{ms}ms") for ms in HORIZONS_MS]
            lines.append(f"| {label} | {action} | " + " | ".join("" if c is None else f"{c:.1f}" for c in cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="LABEL=PATH of a metrics JSON file")
    parser.add_argument("--baselines", default=None, help="motion_baselines.py's output (JSON lines)")
    parser.add_argument("--protocols", nargs="+", default=["motionflow", "ltd8"])
    parser.add_argument("--curves", default=None, help="write the MPJPE curves to this PNG")
    args = parser.parse_args()
    runs = dict(read(text) for text in args.runs) | (baselines(args.baselines) if args.baselines else {})
    for protocol in args.protocols:
        print("\n".join(table(runs, protocol)) + "\n")
    if args.curves:
        print(plot_mpjpe_curves(runs, args.curves))


if __name__ == "__main__":
    main()
