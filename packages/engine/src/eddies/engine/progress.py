"""Training progress on rank 0: a bar on a terminal, plain lines in a log file.

When stderr is a terminal (and ``TQDM_DISABLE`` is not set) a tqdm bar shows the step, the loss
and the throughput. Otherwise (a batch job, output redirected to a file) every
``train.progress_every`` seconds one plain line goes to stderr::

    step 120/2000 (6.0%) loss 1.234 samples/s 850 ETA 0:03:12

``samples/s`` is the trainer's throughput over the time spent loading and stepping (the
``samples_per_s`` of ``steps.jsonl``: images/s for an image task); the ETA is the remaining steps
at the wall-clock pace of this process so far (evaluations and checkpoints included), so it is an
estimate, not a promise. The trainer's own lines (each evaluation's metrics, a skipped step) go
through :meth:`Progress.write`, which prints them above the bar instead of over it.

Example::

    >>> import io
    >>> out, now = io.StringIO(), [0.0]
    >>> progress = Progress(10, 0, every=5.0, bar=False, file=out, clock=lambda: now[0])
    >>> now[0] = 6.0; progress.update(3, 0.5, 200.0)
    >>> out.getvalue()
    'step 3/10 (30.0%) loss 0.5 samples/s 200 ETA 0:00:14\\n'
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import IO

from tqdm.auto import tqdm


class Progress:
    """The bar (``bar=True``) or the plain lines every ``every`` seconds (``None``: none) of a run of
    ``total`` steps starting at ``initial``; ``enabled=False`` (ranks > 0) shows nothing."""

    def __init__(self, total: int, initial: int, every: float | None, bar: bool, enabled: bool = True,
                 file: IO[str] | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.initial, self.every = total, initial, every
        self.file, self.clock = file, clock
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                        file=file) if enabled and bar else None
        self.started = self.last_line = clock()

    def update(self, step: int, loss: float | None, samples_per_s: float) -> None:
        """After optimizer step ``step`` (``loss``: None when it was skipped as non-finite)."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4g}", samples_s=f"{samples_per_s:.0f}")
            return
        now = self.clock()
        if not self.enabled or self.every is None or now - self.last_line < self.every:
            return
        self.last_line = now
        pace = (now - self.started) / max(step - self.initial, 1)  # seconds per step, this process
        eta = timedelta(seconds=round(pace * (self.total - step)))
        loss_text = "nan (skipped)" if loss is None else f"{loss:.4g}"
        rate = f"{samples_per_s:.0f}" if math.isfinite(samples_per_s) else "?"
        print(f"step {step}/{self.total} ({100 * step / self.total:.1f}%) loss {loss_text} samples/s {rate} "
              f"ETA {eta}", file=self.file or sys.stderr, flush=True)

    def write(self, line: str) -> None:
        """Print one of the trainer's lines on stdout (above the bar when there is one)."""
        if not self.enabled:
            return
        if self.bar is not None:
            tqdm.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
