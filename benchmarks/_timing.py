"""The timing loop the benchmark scripts share (they import it from their own folder), and the
model training step they time."""

from __future__ import annotations

import statistics
import time


def timed(steps, repeats: int) -> list[float]:
    """Median seconds of each step over ``repeats`` rounds after one warm-up round; the steps
    alternate within a round, so a load change on a shared machine hits both alike."""
    for step in steps:
        step()
    times = [[] for _ in steps]
    for _ in range(repeats):
        for step, record in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


def optimizer_step(model, optimizer, batch) -> None:
    """One training step of a model kind: ``model.loss(batch)["loss"]`` backward, then the optimizer."""
    optimizer.zero_grad(set_to_none=True)
    model.loss(batch)["loss"].backward()
    optimizer.step()
