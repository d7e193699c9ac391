"""Model kind ``temporal_flow``: per frame a conditional flow given one encoding of the sliding
input window, the frames' latents under a temporal prior, rolled out autoregressively (MotionFlow).

Reference: Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion
Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt, sections 4.2-4.4). The data are a
condition ``x`` of ``T_in`` frames and a target ``y`` of ``T`` frames, each frame of one shape
``F`` (``(C, J)``: channels by joints or particles or series; ``(C, H, W)``; or a vector ``(D,)``).

For target frame ``t`` the condition is the window ``x_t`` of the last ``W`` frames before it
(``window``; during training the true frames, i.e. teacher forcing), laid out as an image with
time as its first spatial axis (``(C, W, J)`` for ``(C, J)`` frames: MotionFlow's "channels = 3
exp-map components, height = time, width = joints"). It is encoded **once**, ``u_t =
encoder(x_t)`` (eq. 5 with ``motionflow_conditioner``), and ``u_t`` is the context of every
conditional layer of the flow (eqs. 4, 6 and the coupling's CNN). With ``residual: true`` the flow
models the frame's change, ``(z_t, log|det_t|) = f_{u_t}(y_t - y_{t-1})`` (``y_{-1}`` the last
input frame; ../shared/protocols/motionflow_cmu.md, "the flow models the residual"); the shift by
the known ``y_{t-1}`` has unit Jacobian, so the density is exact in ``y``. The latents follow a
temporal prior (eq. 8, ``p(z) = prod_t p(z_t | z_<t)``: ``residual_latent`` for MotionFlow's
dynamic prior, eqs. 9-12) or, for the table-7 ablation, a per-frame prior such as
``standard_normal``::

    log p(y | x) = Σ_t [ log p_prior(z_t | z_<t) + log|det ∂f_{u_t}/∂y_t| ].

So frame ``t``'s term depends on frames ``< t`` (through ``u_t`` and ``z_<t``) and on ``y_t``,
never on later frames. ``burn_in: k`` starts the temporal prior's history before the target:
the last ``k`` input frames are mapped to latents the same way (each with its own window of
``W`` frames before it, so ``W + k <= T_in``) and condition the first target frames' prior
terms without being scored, so ``p(z_0 | z_<0)`` sees how the input was moving (with
``burn_in: 0`` the history starts empty, ``z_0``'s conditional is learned from nothing, and
only the flow's conditioning on ``u_0`` carries the input's motion into the prior's
dynamics). The sum above stays a conditional density of ``y`` given ``x``: the burn-in latents
are functions of ``x``. ``flow_layout`` (an einops pattern over a frame's axes, e.g. ``"c j -> j
1 c"``) gives the flow its own view of a frame: MotionFlow's Glow has ``y_ch = 24`` channels (the
joints, table 1). ``train_frames`` limits :meth:`loss` to the first frames of the target
(the reduced configuration teacher-forces 10 of the 25).

Generation (eq. 14's sampling process, autoregressively): at each step the window slides over
the model's own outputs, ``u_t`` is encoded, ``z_t`` is drawn from ``p(z_t | z_<t)`` at a
temperature (0: the mean path), ``y_t = y_{t-1} + f_{u_t}^{-1}(z_t)``. ``prefix`` feeds the first
target frames as known (their latents by the forward flow, so the prior's history is the same
as in training). :meth:`predict` is the mean of ``samples`` trajectories, or the temperature-0
mode, drawn as one batch; :meth:`sample` returns ``N`` trajectories for diversity.

Example (frames of 2 channels by 3 points, a window of 4 frames, no encoder)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec(shapes={"x": (4, 2, 3), "y": (5, 2, 3)})
    >>> vector = {"type": "cglow_vector", "channels": 4, "width": 8}  # the (2, 4, 3) window -> a vector
    >>> step = {"type": "glow_step", "actnorm": {"type": "cond_actnorm", "net": vector},
    ...         "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [8]},
    ...                      "context_net": vector, "context_features": 4}}
    >>> model = build({"type": "temporal_flow", "flow": {"type": "chain", "layers": [step, step]},
    ...                "flow_layout": "c j -> (c j)", "prior": {"type": "residual_latent", "hidden": 4},
    ...                "samples": 3}, "models", data=data)
    >>> batch = {"x": torch.randn(2, 4, 2, 3), "y": torch.randn(2, 5, 2, 3)}
    >>> model.log_prob(batch).shape, model.predict(batch).shape, model.sample(batch, samples=4).shape
    (torch.Size([2]), torch.Size([2, 5, 2, 3]), torch.Size([4, 2, 5, 2, 3]))
    >>> model.sample(batch, horizon=8).shape  # roll out past the target's length
    torch.Size([2, 8, 2, 3])
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor

from eddies.core.errors import RecipeError, ShapeError
from eddies.core.model import Model
from eddies.core.prior import TemporalPrior
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec
from eddies.models.slots import (
    build_encoder,
    build_slot,
    checked_condition,
    frame_layout,
    known_prefix,
    sequence_span,
)


class TemporalFlowConfig(ComponentConfig):
    flow: SpecOf("flows") = Field(description="per-frame flow over y_t (or y_t - y_(t-1)), conditioned on u_t")
    prior: SpecOf("priors") = Field(
        "residual_latent", description="temporal prior p(z_t | z_<t) (residual_latent: eqs. 8-12) or a "
        "per-frame prior (standard_normal: the N(0, I) ablation)")
    encoder: SpecOf("conditioners") | None = Field(
        None, description="u_t = encoder(window), once per frame, shared by every conditional layer "
        "(motionflow_conditioner: eq. 5); null: u_t = the window")
    encoder_shape: list[int] | None = Field(None, description="out_shape requested from the encoder")
    window: int | None = Field(None, ge=1, description="W, frames in the sliding window; null: the condition's length")
    burn_in: int = Field(0, ge=0, description="input frames whose latents start the temporal prior's history "
                         "(unscored; needs window + burn_in <= the input frames)")
    residual: bool = Field(True, description="the flow models y_t - y_(t-1) instead of y_t")
    flow_layout: str | None = Field(
        None, description="einops pattern from a frame's axes to the flow's, e.g. 'c j -> j 1 c'; null: as is")
    train_frames: int | None = Field(None, ge=1, description="loss() scores the first k target frames; null: all")
    samples: int = Field(10, ge=1, description="trajectories averaged by predict()")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature used by predict()")


@register(
    "models", "temporal_flow", version=1, config=TemporalFlowConfig,
    summary="Per-frame conditional flow given one encoding of the sliding window, latents under a temporal prior (MotionFlow).",
)
class TemporalFlow(Model):
    """``log p(y | x) = Σ_t log p(z_t | z_<t) + log|det ∂f_{u_t}/∂y_t|``; see the module docstring."""

    kind = "temporal_flow"

    def __init__(self, flow: Spec, prior: Spec, encoder: Spec | None = None, encoder_shape: list[int] | None = None,
                 window: int | None = None, burn_in: int = 0, residual: bool = True, flow_layout: str | None = None,
                 train_frames: int | None = None, samples: int = 10, temperature: float = 1.0, *,
                 data: DataSpec):
        super().__init__(data)
        target, condition = tuple(data.target_shape), data.condition_shape
        if len(target) < 2:
            raise ShapeError(f"{self.kind}: the target {data.target!r} must have shape (T, *frame), got {target}")
        if condition is None or tuple(condition[1:]) != target[1:]:
            raise RecipeError(
                f"{self.kind}: the condition must be the input frames, shape (T_in, {', '.join(map(str, target[1:]))}) "
                f"like the target's frames; got {data.condition!r} with shape {condition}", "task")
        self.frame, self.input_frames = target[1:], condition[0]
        self.window = self.input_frames - burn_in if window is None else window
        if self.window + burn_in > self.input_frames or self.window < 1:
            raise RecipeError(f"{self.kind}: window {self.window} + burn_in {burn_in} exceeds the {self.input_frames} "
                              "input frames (each burn-in frame needs a whole window before it)", "model.window")
        self.burn_in = burn_in
        if train_frames is not None and train_frames > target[0]:
            raise RecipeError(f"{self.kind}: train_frames {train_frames} exceeds the target's {target[0]} frames",
                              "model.train_frames")
        window_shape = (self.frame[0], self.window, *self.frame[1:])
        self.encoder = build_encoder(self.kind, encoder, encoder_shape, "the window", window_shape)
        context = window_shape if self.encoder is None else tuple(self.encoder.output_shape())
        self.to_flow, self.from_flow, flow_shape = frame_layout(flow_layout, self.frame)
        self.flow = build_slot(self.kind, "flow", flow, f"shape={flow_shape} and context_shape={context}",
                               shape=flow_shape, context_shape=context)
        if self.flow.context_shape is None:
            raise RecipeError(
                f"{self.kind}: the flow {flow.name!r} has no conditional layer, so the input window reaches "
                "nothing; use conditional layers (cond_actnorm, cond_invconv1x1, cond_affine_coupling)", "model.flow")
        self.latent = tuple(self.flow.out_shape)
        self.prior = build_slot(self.kind, "prior", prior, f"shape={self.latent} and context_shape=None",
                                shape=self.latent, context_shape=None)
        self.temporal = isinstance(self.prior, TemporalPrior)
        self.residual, self.train_frames = residual, train_frames
        self.samples, self.temperature = samples, temperature

    # pieces --------------------------------------------------------------------------------
    def encode(self, window: Tensor) -> Tensor:
        """``u`` of windows ``(N, W, *frame)``: the window as an image with time as its first
        spatial axis, ``(N, C, W, *rest)``, through the encoder (or as is)."""
        image = rearrange(window, "n w c ... -> n c w ...")
        return image if self.encoder is None else self.encoder(image)

    def _frames(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        x = checked_condition(self.kind, self.data, batch)
        y = batch[self.data.target]
        if y.dim() != 2 + len(self.frame) or tuple(y.shape[2:]) != self.frame or y.shape[0] != x.shape[0]:
            raise ShapeError(f"{self.kind}: target {self.data.target!r} must have shape ({x.shape[0]}, T, "
                             f"{', '.join(map(str, self.frame))}), got {tuple(y.shape)}")
        return x, y

    # density -------------------------------------------------------------------------------
    def log_prob_terms(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(log p_prior(z_t | z_<t), log|det_t|)`` of every target frame, each (B, T); teacher forcing."""
        x, y = self._frames(batch)
        b, steps = y.shape[:2]
        k = self.burn_in if self.temporal else 0  # a per-frame prior has no history to start
        sequence = torch.cat([x, y], dim=1)
        first = self.input_frames - k  # the first frame mapped to a latent
        frames = sequence[:, first:]
        windows = torch.stack([sequence[:, first + t - self.window : first + t] for t in range(k + steps)], dim=1)
        u = self.encode(rearrange(windows, "b t ... -> (b t) ..."))
        change = frames - sequence[:, first - 1 : first - 1 + k + steps] if self.residual else frames
        z, logdet = self.flow(self.to_flow(rearrange(change, "b t ... -> (b t) ...")), u)
        z = z.reshape(b, k + steps, *self.latent)
        if self.temporal:
            prior = self.prior.log_prob_steps(z)[:, k:]  # the burn-in terms condition, unscored
        else:
            prior = self.prior.log_prob(z).reshape(b, steps)
        return prior, logdet.reshape(b, k + steps)[:, k:]

    def log_prob_steps(self, batch: dict[str, Tensor]) -> Tensor:
        """``log p(y_t | y_<t, x)`` of shape (B, T)."""
        prior, logdet = self.log_prob_terms(batch)
        return prior + logdet

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        """``log p(y | x)`` of shape (B,)."""
        return self.log_prob_steps(batch).sum(dim=1)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean NLL per sequence of the first ``train_frames`` target frames (all without it)."""
        if self.train_frames is not None:
            batch = {**batch, self.data.target: batch[self.data.target][:, : self.train_frames]}
        prior, logdet = self.log_prob_terms(batch)
        nll = -(prior + logdet).sum(dim=1)
        return {"loss": nll.mean(), "nll": nll.detach().mean(), "flow_logdet": logdet.detach().sum(1).mean()}

    # generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """Roll out ``(B, prefix + horizon, *frame)``, or ``(samples, B, ...)`` drawn as one batch of
        ``samples·B`` rows: the first ``prefix`` frames (default 0) are the batch's target's, then
        ``horizon`` frames (default: the rest of the target's ``T``) are drawn."""
        n, rows = self.check_samples("sample", samples), self.rows(batch)
        x = checked_condition(self.kind, self.data, batch, rows)
        prefix, horizon = sequence_span(self.kind, "sample", self.data.target_shape[0], prefix, horizon)
        known = known_prefix(self.kind, "sample", self.data, batch, x, prefix)
        if n > 1:  # row n·B + b is draw n of row b
            x = repeat(x, "b ... -> (n b) ...", n=n)
            known = repeat(known, "b ... -> (n b) ...", n=n)
        frames, latents = list(x.unbind(1)), []
        if self.temporal:
            for i in range(self.input_frames - self.burn_in, self.input_frames):  # the burn-in latents
                latents.append(self._latent(frames[i - self.window : i], frames[i]))
        for t in range(prefix + horizon):
            u = self.encode(torch.stack(frames[-self.window :], dim=1))
            base = frames[-1] if self.residual else torch.zeros_like(frames[-1])
            if t < prefix:
                y_t = known[:, t]
                z_t = self.flow(self.to_flow(y_t - base), u)[0]
            else:
                if self.temporal:
                    history = torch.stack(latents, dim=1) if latents else None
                    z_t = self.prior.sample(len(x), temperature=temperature, steps=1, history=history)[:, 0]
                else:
                    z_t = self.prior.sample(len(x), temperature=temperature)
                y_t = base + self.from_flow(self.flow.inverse(z_t, u)[0])
            frames.append(y_t)
            latents.append(z_t)
        y = torch.stack(frames[self.input_frames :], dim=1)
        return y if samples is None else y.reshape(n, rows, *y.shape[1:])

    def _latent(self, window: list[Tensor], frame: Tensor) -> Tensor:
        """``z`` of a known ``frame`` given the ``W`` frames before it (the forward flow)."""
        change = frame - window[-1] if self.residual else frame
        return self.flow(self.to_flow(change), self.encode(torch.stack(window, dim=1)))[0]

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The mean of ``samples`` trajectories (default: the config's) at ``temperature`` (default:
        the config's); at temperature 0 the mode path, drawn once."""
        m = self.check_samples("predict", self.samples if samples is None else samples)
        t = self.temperature if temperature is None else temperature
        draws = self.sample(batch, samples=1 if t == 0 else m, temperature=t, prefix=prefix, horizon=horizon)
        return draws.mean(dim=0)

