"""Inputs for the conformance checks: drawn from a seed, as the example declares.

An example (one entry of a bijection's ``examples`` registration meta) is a dict::

    {"config": {...},                 # config fields (validated like a recipe spec)
     "shape": (C, H, W) or (D,),      # runtime event shape
     "context_shape": None or (...),  # runtime context shape
     "inputs": {"low": 0.01, "high": 0.99},   # optional: uniform inputs (default: normal)
     "context_inputs": {"scale": 2.0}}        # optional: same keys, for the context

An ``inputs`` mapping holds either ``low``/``high`` (uniform) or ``scale`` (normal with that
standard deviation, default 1). Hypothesis (when installed) draws the seed and the batch size;
:func:`draw_inputs` turns them into tensors, so the layer's domain is the example's business and
the draw is cheap and reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


def _draw(spec: Mapping[str, Any] | None, size: tuple[int, ...], generator: torch.Generator,
          dtype: torch.dtype) -> Tensor:
    spec = dict(spec or {})
    unknown = set(spec) - {"low", "high", "scale"}
    if unknown:
        raise ValueError(f"conformance example inputs: unknown keys {sorted(unknown)}; use low/high or scale")
    if "low" in spec or "high" in spec:
        low, high = float(spec.get("low", 0.0)), float(spec.get("high", 1.0))
        return low + (high - low) * torch.rand(size, generator=generator, dtype=dtype)
    return float(spec.get("scale", 1.0)) * torch.randn(size, generator=generator, dtype=dtype)


def draw_inputs(example: Mapping[str, Any], batch: int, seed: int,
                dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor | None]:
    """``(x, context)`` of batch ``batch`` for ``example``, reproducible from ``seed``."""
    generator = torch.Generator().manual_seed(int(seed))
    x = _draw(example.get("inputs"), (batch, *example["shape"]), generator, dtype)
    context_shape = example.get("context_shape")
    if context_shape is None:
        return x, None
    return x, _draw(example.get("context_inputs"), (batch, *context_shape), generator, dtype)


def inputs_strategy() -> Any:
    """Hypothesis strategy of ``(seed, batch)`` pairs (imports hypothesis lazily)."""
    from hypothesis import strategies as st

    return st.tuples(st.integers(0, 2**31 - 1), st.integers(2, 4))
