"""Model kind ``sequence_flow``: a per-step flow under an autoregressive conditional prior.

Reference: Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network",
2020, arXiv:2008.02144 (frmdn.txt).

FRMDN (frmdn.txt section 4, eqs. 10-13): a target sequence ``y_1..T`` (each step of event
shape ``S``) given a condition ``x`` has the density

    log p(y | x) = Σ_t [ log p_prior(f(y_t) | c_t) + log |det ∂f/∂y_t| ],
    c_t = conditioner([h ; y_{t-1}], c_{t-1}),   y_0 = a learned start vector,

with ``h = x`` flattened, or ``h = encoder(x)`` flattened when an ``encoder`` (a
``conditioners`` spec built with ``in_shape`` = the condition's shape and ``out_shape =
encoder_shape``) is given; it runs once per condition per call and feeds every step. So
``c_t`` depends on ``y_<t`` and ``x`` only (eq. 10, with the change of variables of eq. 11;
eq. 12 is its negative sum over a data set). The flow ``f`` is shared by every step; with
``flow_context: true`` its conditional layers (e.g. ``cond_affine_coupling``) also receive
``c_t`` (frmdn.txt figure 6, "the RNN outputs the parameters of a NF"). ``flow_layout`` (an
einops pattern over a step's axes, e.g. ``"c s -> (c s)"``) gives the flow and the prior their
own view of a step (``exchange_rate``'s (1, 8) days as 8-vectors for a RealNVP). The prior owns the head
from ``c_t`` to its parameters (for FRMDN the ``gmm_lowrank`` mixture with precisions
``D_k + U_k U_k^T``, eq. 13). Without a flow (``flow: null``) ``f`` is the identity and the
model is an RMDN (frmdn.txt section 3.1, eq. 1).

Training scores all steps at once (teacher forcing: the conditioner runs over the shifted
sequence ``[y_0, y_1, ..., y_{T-1}]``); sampling runs step by step (frmdn.txt algorithm 1,
"generating"): ``c_t`` from the conditioner's ``step``, ``z_t ~ p_prior(· | c_t)``,
``y_t = f^{-1}(z_t)``, and ``y_t`` is fed back. ``prefix`` feeds the batch's first steps instead
of drawing them (forecasting); ``horizon`` sets how many steps are drawn after them (default:
the rest of ``T``; more than that rolls the recurrence on past ``T``).

Runtime argument ``data`` (the task's :class:`~eddies.core.task.DataSpec`): the target's shape
is ``(T, *S)``; the condition (if any) has any shape and is flattened (after the encoder, if
any) and given to every step. The conditioner must be a
:class:`~eddies.core.conditioner.SequenceConditioner` (teacher-forced ``forward`` over
``(B, T, F)``, ``initial_state`` and ``step``), built with ``in_shape = (|h| + |S|,)``. The
conditioner's output reaches the prior (which must take a context) and, with ``flow_context``,
the flow, so the condition always reaches the density.

Example (an RMDN over 4 steps of 3 values, conditioned on a 2-vector)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec(shapes={"y": (4, 3), "x": (2,)})
    >>> model = build({"type": "sequence_flow", "conditioner": {"type": "lstm", "hidden_size": 8},
    ...                "prior": {"type": "gmm_lowrank", "components": 2, "rank": 1}},
    ...               "models", data=data)
    >>> batch = {"y": torch.randn(5, 4, 3), "x": torch.randn(5, 2)}
    >>> model.log_prob(batch).shape, model.sample(batch).shape, model.sample(batch, samples=3).shape
    (torch.Size([5]), torch.Size([5, 4, 3]), torch.Size([3, 5, 4, 3]))
    >>> model.sample(batch, prefix=2, horizon=4).shape  # two given steps, four drawn after them
    torch.Size([5, 6, 3])
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor, nn

from eddies.core.bijection import zeros_logdet
from eddies.core.conditioner import SequenceConditioner
from eddies.core.errors import RecipeError, ShapeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec
from eddies.models.slots import build_encoder, build_slot, checked_condition, frame_layout


class SequenceFlowConfig(ComponentConfig):
    conditioner: SpecOf("conditioners") = Field(
        description="sequence conditioner over [h ; y_{t-1}] (lstm, gru): gives c_t"
    )
    prior: SpecOf("priors") = Field(description="per-step prior p(z_t | c_t), e.g. gmm_lowrank")
    flow: SpecOf("flows") | None = Field(None, description="per-step flow f; null = identity (RMDN)")
    flow_context: bool = Field(False, description="give c_t to the flow too (frmdn.txt figure 6)")
    flow_layout: str | None = Field(
        None, description="einops pattern from a step's axes to the shape the flow and prior model, e.g. "
        "'c s -> (c s)'; null: as is")
    encoder: SpecOf("conditioners") | None = Field(
        None, description="h = encoder(x), computed once per condition and fed to every step; null: h = x")
    encoder_shape: list[int] | None = Field(
        None, description="out_shape requested from the encoder (e.g. [32] for an mlp); null: its own choice")
    samples: int = Field(1, ge=1, description="draws averaged by predict()")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature used by predict()")


@register(
    "models", "sequence_flow", version=1, config=SequenceFlowConfig,
    summary="Per-step flow under an autoregressive conditional prior (FRMDN; RMDN without a flow).",
)
class SequenceFlow(Model):
    """``log p(y | x) = Σ_t log p(f(y_t) | c_t) + log|det ∂f/∂y_t|``; see the module docstring."""

    kind = "sequence_flow"

    def __init__(
        self,
        conditioner: Spec,
        prior: Spec,
        flow: Spec | None = None,
        flow_context: bool = False,
        flow_layout: str | None = None,
        encoder: Spec | None = None,
        encoder_shape: list[int] | None = None,
        samples: int = 1,
        temperature: float = 1.0,
        *,
        data: DataSpec,
    ):
        super().__init__(data)
        target = tuple(data.target_shape)
        if len(target) < 2:
            raise ShapeError(
                f"sequence_flow: the target {data.target!r} must have shape (T, *step_shape), got {target}"
            )
        self.steps, self.step_shape = target[0], target[1:]
        self.step_size = math.prod(self.step_shape)
        self.encoder = build_encoder(self.kind, encoder, encoder_shape, data.condition, data.condition_shape)
        condition = data.condition_shape if self.encoder is None else self.encoder.output_shape()
        self.condition_size = 0 if condition is None else math.prod(condition)
        in_shape = (self.condition_size + self.step_size,)
        self.conditioner = build_slot(
            self.kind, "conditioner", conditioner, f"in_shape={in_shape} ([h ; y_(t-1)] per step) and no "
            "out_shape, as a sequence conditioner (lstm, gru) needs", in_shape=in_shape, out_shape=None)
        if not isinstance(self.conditioner, SequenceConditioner):
            raise RecipeError(
                f"{conditioner.name!r} is not a sequence conditioner (an eddies.core.SequenceConditioner "
                "with initial_state() and step()); sequence_flow needs one such as lstm or gru",
                "model.conditioner",
            )
        context = self.conditioner.output_shape()
        if not isinstance(context, tuple):
            raise RecipeError(
                f"{conditioner.name!r} states output {context!r}; sequence_flow needs one tensor shape",
                "model.conditioner",
            )
        self.to_flow, self.from_flow, flow_shape = frame_layout(flow_layout, self.step_shape)
        self.prior = build_slot(self.kind, "prior", prior, f"shape={flow_shape} and context_shape={context} (c_t)",
                                shape=flow_shape, context_shape=context)
        if self.prior.context_shape is None:
            raise RecipeError(
                f"sequence_flow: the prior {prior.name!r} takes no context, so c_t (and the condition and "
                "the past steps) would reach nothing; use a conditional prior such as gmm_lowrank or "
                "diag_gaussian", "model.prior",
            )
        self.flow = None if flow is None else flow.build(
            shape=flow_shape, context_shape=context if flow_context else None
        )
        if flow_context and (self.flow is None or self.flow.context_shape is None):
            raise RecipeError(
                "flow_context is true, but the flow takes no context; use conditional layers "
                "such as cond_affine_coupling", "model.flow",
            )
        if self.flow is not None and tuple(self.flow.out_shape) != flow_shape:
            raise ShapeError(
                f"sequence_flow: the flow must keep the step shape {flow_shape}, "
                f"but {flow.name!r} outputs {tuple(self.flow.out_shape)}"
            )
        self.flow_context = flow_context
        self.samples, self.temperature = samples, temperature
        self.start = nn.Parameter(torch.zeros(self.step_size))  # y_0, the first step's input

    # helpers ------------------------------------------------------------------------------
    def _condition(self, batch: dict[str, Tensor], rows: int) -> Tensor | None:
        """``h`` flattened, ``(B, |h|)``: the checked condition, encoded once when there is an
        encoder; ``None`` for unconditional data."""
        x = checked_condition(self.kind, self.data, batch, rows)
        if x is None:
            return None
        h = x if self.encoder is None else self.encoder(x)
        return h.reshape(h.shape[0], -1)

    def _inputs(self, condition: Tensor | None, previous: Tensor) -> Tensor:
        """Conditioner input ``[h ; y_{t-1}]`` along the last axis (h broadcast over steps)."""
        if condition is None:
            return previous
        if previous.dim() == 3:
            condition = condition.unsqueeze(1).expand(-1, previous.shape[1], -1)
        return torch.cat([condition, previous], dim=-1)

    def _flow_forward(self, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        if self.flow is None:
            return y, zeros_logdet(y)
        return self.flow(y, context if self.flow_context else None)

    def _flow_inverse(self, z: Tensor, context: Tensor) -> Tensor:
        if self.flow is None:
            return z
        return self.flow.inverse(z, context if self.flow_context else None)[0]

    # density ------------------------------------------------------------------------------
    def log_prob_terms(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(log p_prior(f(y_t) | c_t), log|det ∂f/∂y_t|)``, each of shape (B, T)."""
        y = batch[self.data.target]
        if tuple(y.shape[1:]) != (self.steps, *self.step_shape):
            raise ShapeError(
                f"sequence_flow: target {self.data.target!r} must have shape "
                f"(batch, {', '.join(map(str, (self.steps, *self.step_shape)))}), got {tuple(y.shape)}"
            )
        b = y.shape[0]
        condition = self._condition(batch, b)
        flat = y.reshape(b, self.steps, self.step_size)
        previous = torch.cat([self.start.to(y.dtype).expand(b, 1, -1), flat[:, :-1]], dim=1)
        context = self.conditioner(self._inputs(condition, previous))  # (B, T, *C): c_t sees y_<t
        steps = self.to_flow(rearrange(y, "b t ... -> (b t) ..."))
        contexts = rearrange(context, "b t ... -> (b t) ...")
        z, logdet = self._flow_forward(steps, contexts)
        prior = self.prior.log_prob(z, contexts)
        return prior.view(b, self.steps), logdet.view(b, self.steps)

    def log_prob_steps(self, batch: dict[str, Tensor]) -> Tensor:
        """``log p(y_t | y_<t, x)`` of shape (B, T)."""
        prior, logdet = self.log_prob_terms(batch)
        return prior + logdet

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        """``log p(y | x)`` of shape (B,)."""
        return self.log_prob_steps(batch).sum(dim=1)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean NLL per sequence (``loss``), plus the flow's mean log-determinant for monitoring."""
        prior, logdet = self.log_prob_terms(batch)
        nll = -(prior + logdet).sum(dim=1)
        return {"loss": nll.mean(), "nll": nll.detach().mean(), "flow_logdet": logdet.detach().sum(1).mean()}

    # generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
        prefix: int | None = None, horizon: int | None = None,
    ) -> Tensor:
        """Draw step by step (frmdn.txt algorithm 1): ``(B, prefix + horizon, *S)``, or
        ``(samples, B, prefix + horizon, *S)`` drawn as one batch of ``samples·B`` sequences.

        The first ``prefix`` steps (default 0) are ``batch``'s target's, fed back as if drawn;
        ``horizon`` steps (default ``T - prefix``) are drawn after them. ``B`` is the condition's
        batch size (for unconditional data see :meth:`eddies.core.model.Model.rows`).
        """
        n, rows = self.check_samples("sample", samples), self.rows(batch)
        prefix = 0 if prefix is None else prefix
        if not 0 <= prefix <= self.steps:
            raise ValueError(f"sequence_flow.sample: prefix must lie in 0..{self.steps}, got {prefix}")
        horizon = self.steps - prefix if horizon is None else horizon
        if horizon < 0 or prefix + horizon < 1:
            raise ValueError(
                f"sequence_flow.sample: horizon must be >= 0 with prefix + horizon >= 1, got prefix={prefix}, "
                f"horizon={horizon}"
            )
        condition = self._condition(batch, rows)
        known = None
        if prefix:
            if self.data.target not in batch:
                raise ShapeError(f"sequence_flow.sample: prefix={prefix} needs the target {self.data.target!r} in the batch")
            known = batch[self.data.target][:, :prefix]
            if tuple(known.shape) != (rows, prefix, *self.step_shape):
                raise ShapeError(
                    f"sequence_flow.sample: the first {prefix} target steps must have shape "
                    f"{(rows, prefix, *self.step_shape)}, got {tuple(known.shape)}"
                )
        if n > 1:  # row n·B + b is draw n of row b
            condition = None if condition is None else repeat(condition, "b f -> (n b) f", n=n)
            known = None if known is None else repeat(known, "b ... -> (n b) ...", n=n)
        size = n * rows
        reference = self.start
        state = self.conditioner.initial_state(size, reference.device, reference.dtype)
        previous = reference.expand(size, -1)
        out = []
        for t in range(prefix + horizon):
            context, state = self.conditioner.step(self._inputs(condition, previous), state)
            if t < prefix:
                y_t = known[:, t].to(reference.dtype)
            else:
                z = self.prior.sample(context=context, temperature=temperature)
                y_t = self.from_flow(self._flow_inverse(z, context))
            out.append(y_t)
            previous = y_t.reshape(size, self.step_size)
        y = torch.stack(out, dim=1)
        return y if samples is None else y.reshape(n, rows, *y.shape[1:])

    @torch.no_grad()
    def predict(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
        prefix: int | None = None, horizon: int | None = None,
    ) -> Tensor:
        """Mean of ``samples`` draws of :meth:`sample` (defaults: the config's ``samples`` and
        ``temperature``; ``temperature=0`` gives the per-step modes fed back, drawn once)."""
        m = self.check_samples("predict", self.samples if samples is None else samples)
        t = self.temperature if temperature is None else temperature
        draws = self.sample(batch, samples=1 if t == 0 else m, temperature=t, prefix=prefix, horizon=horizon)
        return draws.mean(dim=0)
