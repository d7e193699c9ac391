"""Model kind ``conditional_flow``: a flow over ``y`` conditioned on ``x`` (c-Glow, MotionFlow).

c-Glow (cglow.txt eqs. 1 and 2): with ``(z, log|det|) = f_x(y)`` the normalizing direction of a
flow whose layers take their parameters from ``x``,

    log p(y | x) = log p_Z(z) + log|det ∂f_x(y)/∂y|,

with a standard Gaussian ``p_Z`` (cglow.txt section 4; any ``priors`` spec may replace it, and
with ``prior_context: true`` it is built with ``x``'s shape as its context). Sampling draws
``z ~ p_Z`` at a temperature and returns ``y = f_x^{-1}(z)``. Prediction is the sample average
of eq. 4, ``y* ≈ (1/M) Σ_i f_x^{-1}(z_i)``, with ``M = samples`` (eq. 3's argmax is
intractable). Without a condition in the data (``DataSpec.condition = None``) the flow is
unconditional (Glow).

Runtime argument ``data``: the flow is built with ``shape`` = the target's shape and
``context_shape`` = the condition's shape; the prior with the flow's ``out_shape``.

Example (a conditional RealNVP-style flow over 3-vectors given a 2-vector)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec(shapes={"y": (3,), "x": (2,)})
    >>> step = {"type": "glow_step", "actnorm": "cond_actnorm",
    ...         "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [8]}}}
    >>> model = build({"type": "conditional_flow", "flow": {"type": "chain", "layers": [step, step]},
    ...                "prior": "standard_normal", "samples": 4}, "models", data=data)
    >>> batch = {"y": torch.randn(5, 3), "x": torch.randn(5, 2)}
    >>> model.log_prob(batch).shape, model.predict(batch).shape
    (torch.Size([5]), torch.Size([5, 3]))
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from torch import Tensor

from eddies.core.errors import ShapeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec


class ConditionalFlowConfig(ComponentConfig):
    flow: SpecOf("flows") = Field(description="flow over the target, conditioned on x (e.g. multiscale)")
    prior: SpecOf("priors") = Field("standard_normal", description="p_Z over the flow's output")
    prior_context: bool = Field(False, description="build the prior with x's shape as its context")
    samples: int = Field(10, ge=1, description="M of eq. 4: samples averaged by predict()")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature used by predict()")


@register(
    "models", "conditional_flow", version=1, config=ConditionalFlowConfig,
    summary="Flow over y conditioned on x with a Gaussian prior; sample-averaged prediction (c-Glow).",
)
class ConditionalFlow(Model):
    """``log p(y|x) = log p_Z(f_x(y)) + log|det ∂f_x/∂y|``; see the module docstring."""

    def __init__(self, flow: Spec, prior: Spec, prior_context: bool = False, samples: int = 10,
                 temperature: float = 1.0, *, data: DataSpec):
        super().__init__(data)
        condition = None if data.condition is None else tuple(data.condition_shape)
        self.flow = flow.build(shape=tuple(data.target_shape), context_shape=condition)
        self.prior = prior.build(shape=tuple(self.flow.out_shape),
                                 context_shape=condition if prior_context else None)
        self.prior_context, self.samples, self.temperature = prior_context, samples, temperature

    def _x(self, batch: dict[str, Tensor], size: int) -> Tensor | None:
        if self.data.condition is None:
            return None
        x = batch.get(self.data.condition)
        want = (size, *self.data.condition_shape)
        if x is None or tuple(x.shape) != want:
            got = None if x is None else tuple(x.shape)
            raise ShapeError(f"conditional_flow: condition {self.data.condition!r} must have shape {want}, got {got}")
        return x

    def _flow_context(self, x: Tensor | None) -> Tensor | None:
        return x if self.flow.context_shape is not None else None

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        y = batch[self.data.target]
        x = self._x(batch, y.shape[0])
        z, logdet = self.flow(y, self._flow_context(x))
        return self.prior.log_prob(z, x if self.prior_context else None) + logdet

    def sample(self, batch: dict[str, Tensor], temperature: float = 1.0, **options: Any) -> Tensor:
        """One ``y ~ p(y | x)`` per row of the batch's condition (``n`` rows without one)."""
        if self.data.condition is None:
            n = options.get("n") or batch[self.data.target].shape[0]
            z = self.prior.sample(n, temperature=temperature)
            x = None
        else:
            x = batch[self.data.condition]
            x = self._x(batch, x.shape[0])
            z = (self.prior.sample(context=x, temperature=temperature) if self.prior_context
                 else self.prior.sample(x.shape[0], temperature=temperature))
        return self.flow.inverse(z, self._flow_context(x))[0]

    def predict(self, batch: dict[str, Tensor], samples: int | None = None,
                temperature: float | None = None, **options: Any) -> Tensor:
        """cglow.txt eq. 4: the average of ``samples`` draws at ``temperature``."""
        m = samples or self.samples
        t = self.temperature if temperature is None else temperature
        total = self.sample(batch, temperature=t, **options)
        for _ in range(m - 1):
            total = total + self.sample(batch, temperature=t, **options)
        return total / m
