"""Training metrics as JSON lines and their PNG curves.

``<run_dir>/metrics/steps.jsonl`` receives one record every ``train.log_every`` optimizer steps
(``step``, ``epoch``, ``loss`` and the model's other loss entries averaged over the interval and
across processes, ``lr``, ``grad_norm``, ``samples_per_s``, ``nonfinite`` skipped so far);
``<run_dir>/metrics/evals.jsonl`` one record per evaluation (``val_*`` and ``train_*`` means).
:func:`plot_curves` draws both into ``<run_dir>/curves.png`` (matplotlib, Agg backend; labelled
y-axes, the loss panel's range from the first evaluation on). When a run
resumes, records after the checkpoint's step are dropped first (:meth:`MetricsLog.truncate`), so
the files of a resumed run equal those of an uninterrupted one. The trainer appends a step's
records, and fsyncs them (:meth:`MetricsLog.sync`), before it writes that step's checkpoint, so
a checkpoint on disk implies its records are too (a kill in between loses nothing: the resumed
run drops and recomputes them); a line cut short by a kill is skipped when reading.

Example::

    >>> import tempfile, pathlib
    >>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()))
    >>> log.append("steps", {"step": 1, "loss": 2.0}); log.read("steps")
    [{'step': 1, 'loss': 2.0}]
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

from eddies.core.files import atomic_write_bytes, fsync_path

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KINDS = ("steps", "evals")


class MetricsLog:
    """Append-only JSON-lines files ``metrics/steps.jsonl`` and ``metrics/evals.jsonl``."""

    def __init__(self, run_dir: Path):
        self.folder = Path(run_dir) / "metrics"
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"metrics kind must be one of {KINDS}, got {kind!r}")
        return self.folder / f"{kind}.jsonl"

    def append(self, kind: str, record: dict[str, Any]) -> None:
        with open(self.path(kind), "a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self, kind: str) -> list[dict[str, Any]]:
        path = self.path(kind)
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a killed process
                continue
        return records

    def truncate(self, step: int) -> None:
        """Keep only records up to ``step`` (atomically rewritten; cut-short lines dropped)."""
        for kind in KINDS:
            kept = [r for r in self.read(kind) if r.get("step", 0) <= step]
            atomic_write_bytes(self.path(kind), "".join(json.dumps(r) + "\n" for r in kept).encode())

    def sync(self) -> None:
        """fsync both files, so that what was appended survives a crash of the machine too."""
        for kind in KINDS:
            if self.path(kind).is_file():
                fsync_path(self.path(kind))


YLABELS = {"loss": "loss (mean per sample)", "lr": "learning rate"}


def plot_curves(run_dir: Path) -> Path:
    """Draw the training and validation loss, every other validation metric and the lr into ``curves.png``.

    One panel per quantity, its name on the y-axis. The loss panel's y-range covers the losses
    from the first evaluation on (the first steps' losses, often orders of magnitude larger,
    would flatten the rest; its title then says from which step); see :func:`loss_range`.
    """
    log = MetricsLog(run_dir)
    steps, evals = log.read("steps"), log.read("evals")
    val_keys = sorted({k for r in evals for k in r if k.startswith("val_") and k != "val_loss"})
    panels = ["loss", *val_keys, "lr"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        title = key
        if key == "loss":
            _line(ax, steps, "loss", "train")
            _line(ax, evals, "val_loss", "validation", marker="o")
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
            shown = loss_range(steps, evals)
            if shown is not None:
                low, high, first = shown
                margin = 0.05 * (high - low) or 0.05 * abs(high) or 1.0
                ax.set_ylim(low - margin, high + margin)
                title = f"loss (y-range from step {first})"
        elif key == "lr":
            _line(ax, steps, "lr", None)
        else:
            _line(ax, evals, key, None, marker="o")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(YLABELS.get(key, key))
    fig.subplots_adjust(left=0.3 / len(panels), right=1 - 0.05 / len(panels), bottom=0.16, top=0.9,
                        wspace=0.45)
    out = Path(run_dir) / "curves.png"
    tmp = out.with_name(".curves.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def loss_range(steps: list[dict[str, Any]], evals: list[dict[str, Any]]) -> tuple[float, float, int] | None:
    """(low, high, from step) of the train and validation losses from the first evaluation on.

    When fewer than 3 training records follow the first evaluation (a run evaluated only at its
    end), the range starts after the first tenth of the records instead. ``None`` when that
    would hide nothing (no record before the start) or leaves no finite value.
    """
    train = [(r["step"], r["loss"]) for r in steps if _finite(r.get("loss"))]
    val = [(r["step"], r["val_loss"]) for r in evals if _finite(r.get("val_loss"))]
    if not train:
        return None
    first = min((step for step, _ in val), default=None)
    if first is None or sum(step >= first for step, _ in train) < 3:
        first = train[len(train) // 10][0]
    if not any(step < first for step, _ in train + val):
        return None
    kept = [value for step, value in train + val if step >= first]
    return (min(kept), max(kept), first) if kept else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _line(ax: Any, records: list[dict[str, Any]], key: str, label: str | None, marker: str | None = None) -> None:
    points = [(r["step"], r[key]) for r in records if _finite(r.get(key))]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=label, marker=marker)
