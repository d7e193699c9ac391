"""The soft bound used wherever a network's raw output becomes a log-scale.

``soft_bound(x, b) = b * tanh(x / b)`` maps the real line onto ``(-b, b)``, is the identity near
zero (slope 1 at ``x = 0``, so a zero-started network still starts at scale 1) and never has a
zero gradient, unlike a hard clamp. An unbounded ``exp(x)`` is the usual source of NaN/Inf in
flows and Gaussian heads; bounding ``log s`` to ``(-b, b)`` keeps ``s`` in ``(e^-b, e^b)``.
Used by the flows' ``exp_clamp`` scales and the priors' log-standard-deviations.

>>> import torch
>>> soft_bound(torch.tensor([0.0, 1.0, 1e6]), 2.0)
tensor([0.0000, 0.9242, 2.0000])
"""

from __future__ import annotations

import torch
from torch import Tensor


def soft_bound(x: Tensor, bound: float) -> Tensor:
    """``bound * tanh(x / bound)``: ``x`` softly bounded to ``(-bound, bound)`` (``bound > 0``)."""
    return bound * torch.tanh(x / bound)


__all__ = ["soft_bound"]
