"""Model kind ``conditional_flow``: a flow over ``y`` conditioned on ``x`` (c-Glow).

References: Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI
2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal
Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt),
whose conditional flow steps share one encoding of the input (section 4.3, eq. 5): the
``encoder`` slot below.

c-Glow (cglow.txt eqs. 1 and 2): with ``(z, log|det|) = f_h(y)`` the normalizing direction of a
flow whose conditional layers take their parameters from the context ``h``,

    log p(y | x) = log p_Z(z | h) + log|det ∂f_h(y)/∂y|,     h = encoder(x)  (or h = x),

with a standard Gaussian ``p_Z`` (cglow.txt section 4; any ``priors`` spec may replace it, and
with ``prior_context: true`` it is built with ``h``'s shape as its context). Sampling draws
``z ~ p_Z`` at a temperature and returns ``y = f_h^{-1}(z)``. Prediction is the sample average
of eq. 4, ``y* ≈ (1/M) Σ_i f_h^{-1}(z_i)``, with ``M = samples`` (eq. 3's argmax is
intractable); the ``M`` draws share one encoding and run as one batched inverse of ``M·B`` rows.

The ``encoder`` (a ``conditioners`` spec, optional) is built with ``in_shape`` = the condition's
shape and ``out_shape = encoder_shape``; its one output shape is the ``context_shape`` of every
conditional layer of the flow (and of the prior with ``prior_context``). It runs once per
condition per call (``log_prob``, ``sample`` and ``predict`` each encode ``x`` once), so c-Glow's
per-layer conditioning networks can share its features. Without an encoder ``h = x``.

No silent loss of conditioning: with a condition in the data, a flow that states
``context_shape = None`` (no conditional layer: a composite of unconditional layers states
``None``) and a prior without a context is a :class:`~eddies.core.errors.RecipeError` at
``model.flow``; so is ``prior_context: true`` with a prior that takes no context. Without a
condition (``DataSpec.condition = None``) the flow is unconditional (Glow); its number of rows
is the batch's target's, or one for an empty batch (see :mod:`eddies.core.model`).

Runtime argument ``data``: the flow is built with ``shape`` = the target's shape and
``context_shape`` = ``h``'s shape; the prior with the flow's ``out_shape``.

Example (a conditional RealNVP-style flow over 3-vectors given a 2-vector)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec(shapes={"y": (3,), "x": (2,)})
    >>> step = {"type": "glow_step", "actnorm": "cond_actnorm",
    ...         "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [8]}}}
    >>> model = build({"type": "conditional_flow", "flow": {"type": "chain", "layers": [step, step]},
    ...                "encoder": {"type": "mlp", "hidden": [8]}, "encoder_shape": [4],
    ...                "prior": "standard_normal", "samples": 4}, "models", data=data)
    >>> batch = {"y": torch.randn(5, 3), "x": torch.randn(5, 2)}
    >>> model.log_prob(batch).shape, model.predict(batch).shape, model.sample(batch, samples=2).shape
    (torch.Size([5]), torch.Size([5, 3]), torch.Size([2, 5, 3]))
"""

from __future__ import annotations

from einops import repeat
from pydantic import Field
from torch import Tensor

from eddies.core.errors import RecipeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec
from eddies.models.slots import build_encoder, build_slot, checked_condition

_CONDITIONAL_LAYERS = "cond_actnorm, cond_invconv1x1, cond_affine_coupling or maf"


class ConditionalFlowConfig(ComponentConfig):
    flow: SpecOf("flows") = Field(description="flow over the target, conditioned on h (e.g. multiscale)")
    prior: SpecOf("priors") = Field("standard_normal", description="p_Z over the flow's output")
    prior_context: bool = Field(False, description="build the prior with h's shape as its context")
    encoder: SpecOf("conditioners") | None = Field(
        None, description="h = encoder(x), computed once per condition and shared by every "
        "conditional layer (and the prior with prior_context); null: h = x")
    encoder_shape: list[int] | None = Field(
        None, description="out_shape requested from the encoder (e.g. [64] for an mlp); null: "
        "the encoder's own choice")
    samples: int = Field(10, ge=1, description="M of eq. 4: samples averaged by predict()")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature used by predict()")


@register(
    "models", "conditional_flow", version=1, config=ConditionalFlowConfig,
    summary="Flow over y conditioned on x (optionally through one shared encoder); sample-averaged prediction (c-Glow).",
)
class ConditionalFlow(Model):
    """``log p(y|x) = log p_Z(f_h(y)) + log|det ∂f_h/∂y|``, ``h = encoder(x)``; see the module docstring."""

    kind = "conditional_flow"

    def __init__(self, flow: Spec, prior: Spec, prior_context: bool = False, encoder: Spec | None = None,
                 encoder_shape: list[int] | None = None, samples: int = 10, temperature: float = 1.0, *,
                 data: DataSpec):
        super().__init__(data)
        condition = None if data.condition is None else tuple(data.condition_shape)
        self.encoder = build_encoder(self.kind, encoder, encoder_shape, data.condition, condition)
        context = condition if self.encoder is None else self.encoder.output_shape()
        target = tuple(data.target_shape)
        self.flow = build_slot(self.kind, "flow", flow, f"shape={target} and context_shape={context}",
                               shape=target, context_shape=context)
        if self.flow.context_shape is not None and self.flow.context_shape != context:
            raise RecipeError(
                f"{self.kind}: the flow {flow.name!r} was built with context_shape={context} but states "
                f"{self.flow.context_shape}", "model.flow",
            )
        if prior_context and context is None:
            raise RecipeError(f"{self.kind}: prior_context is true, but the data has no condition",
                              "model.prior_context")
        prior_shape, prior_context_shape = tuple(self.flow.out_shape), context if prior_context else None
        self.prior = build_slot(self.kind, "prior", prior,
                                f"shape={prior_shape} and context_shape={prior_context_shape}",
                                shape=prior_shape, context_shape=prior_context_shape)
        if prior_context and self.prior.context_shape is None:
            raise RecipeError(
                f"{self.kind}: prior_context is true, but the prior {prior.name!r} takes no context",
                "model.prior",
            )
        if context is not None and self.flow.context_shape is None and not prior_context:
            via = "" if self.encoder is None else f" (through the encoder {encoder.name!r})"
            raise RecipeError(
                f"{self.kind}: the condition {data.condition!r}{via} reaches no layer of the flow "
                f"{flow.name!r} (it has no conditional layer) and no prior (prior_context is false); "
                f"use conditional layers ({_CONDITIONAL_LAYERS}) or prior_context: true with a "
                "conditional prior such as diag_gaussian", "model.flow",
            )
        self.prior_context, self.samples, self.temperature = prior_context, samples, temperature

    # the condition ---------------------------------------------------------------------------
    def encode(self, batch: dict[str, Tensor], rows: int) -> Tensor | None:
        """The context ``h`` (``rows``, *context) of the batch's condition, or ``None`` without one."""
        x = checked_condition(self.kind, self.data, batch, rows)
        return x if x is None or self.encoder is None else self.encoder(x)

    def _flow_context(self, h: Tensor | None) -> Tensor | None:
        # the constructor refused a condition that reaches neither the flow nor the prior
        return h if self.flow.context_shape is not None else None

    # density ---------------------------------------------------------------------------------
    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        y = batch[self.data.target]
        h = self.encode(batch, y.shape[0])
        z, logdet = self.flow(y, self._flow_context(h))
        return self.prior.log_prob(z, h if self.prior_context else None) + logdet

    # generation ------------------------------------------------------------------------------
    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """``y = f_h^{-1}(z)``, ``z ~ p_Z`` at ``temperature`` (cglow.txt eq. 2): ``(B, *target)``,
        or ``(samples, B, *target)`` drawn as one batch of ``samples·B`` rows sharing one encoding."""
        self.refuse_sequence_options("sample", prefix, horizon)
        n, rows = self.check_samples("sample", samples), self.rows(batch)
        h = self.encode(batch, rows)
        if h is not None and n > 1:
            h = repeat(h, "b ... -> (n b) ...", n=n)  # row n·B + b is draw n of row b
        z = (self.prior.sample(context=h, temperature=temperature) if self.prior_context
             else self.prior.sample(n * rows, temperature=temperature))
        y = self.flow.inverse(z, self._flow_context(h))[0]
        return y if samples is None else y.reshape(n, rows, *y.shape[1:])

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """cglow.txt eq. 4: the average of ``samples`` (default: the config's ``M``) draws at
        ``temperature`` (default: the config's), all from one encoding of ``x``; at temperature
        0 every draw is the mode ``f_h^{-1}(mode of p_Z)``, computed once."""
        self.refuse_sequence_options("predict", prefix, horizon)
        m = self.check_samples("predict", self.samples if samples is None else samples)
        t = self.temperature if temperature is None else temperature
        return self.sample(batch, samples=1 if t == 0 else m, temperature=t).mean(dim=0)
