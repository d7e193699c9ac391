"""Causal temporal prior with residual dynamics (MotionFlow eqs. 8-12; SRVP eqs. 1-2).

``mode: latent`` (MotionFlow, motionflow.txt eqs. 8-12). The flow latents ``z_1..T`` of the
frames are scored autoregressively, ``p(z) = prod_t N(z_t; mu_t, sigma_t^2)`` (eqs. 8-9), with a
residual mean ``mu_t = z_{t-1} + Delta_t`` (eq. 12) and ``(Delta_t, log sigma_t)`` computed from
``z_<t`` by a stack of causal residual blocks (eq. 11, :mod:`eddies.priors.residual_blocks`:
gated activation units, time dilations 1, 2, 4, zero-initialised last layers, so an untrained
prior is the random walk ``N(z_{t-1}, I)``). ``z_0 = 0``, so ``mu_1 = Delta_1`` is learned.
Alternatively ``net`` names a per-step conditioner applied to the last ``order`` latents stacked
along the first event axis (``in_shape=(order * C, *spatial)``, ``out_shape=(2 C, *spatial)``),
for example an ``mlp`` for vector latents.

**Deviation from the paper.** Eq. 10 concatenates ``h_{t-1}`` with ``h_t``, the representation
of ``z_t`` itself, to produce the parameters of ``p(z_t | ...)``; a density whose parameters
depend on the point being scored is not a normalised density of ``z_t`` (and cannot be sampled
step by step). Here the parameters of step ``t`` depend on ``z_<t`` only, as eq. 8 requires.

``mode: state`` (SRVP, srvp.txt eqs. 1-2). A deterministic state ``y`` evolves by Euler steps
``y <- y + dt * f(y, z_t)`` (``1/dt`` substeps per frame, ``z_t`` held constant between integer
steps), and ``p(z_t | y_{t-1}) = N(mu(y_{t-1}), sigma(y_{t-1})^2)``. The context is the initial
state ``y_0`` (SRVP's ``y_1``; our ``z_t`` is SRVP's ``z_{t+1}``), shape ``(B, S)`` with
``context_shape=(S,)``. ``f`` is the ``net`` spec (built with ``in_shape=(S + d,)``,
``out_shape=(S,)``), the Gaussian's head is ``head`` (linear when ``null``). ``dt`` is a setting
that every method also takes as an argument, so a model trained with ``dt=1`` can generate with
``dt=1/2``; :meth:`ResidualDynamics.states` returns all intermediate states for decoding.

Both modes: ``log sigma = b * tanh(raw / b)`` (``b = log_scale_bound``); sampling at temperature
``T`` draws ``z_t = mu_t + T sigma_t eps`` step by step (``T = 0``: the mean path).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor

from eddies.core import ShapeError, Spec, SpecOf, TemporalPrior, register
from eddies.priors.base import (
    batch_shape,
    bounded_log_scale,
    check_context,
    check_temperature,
    diag_normal_log_prob,
)
from eddies.priors.head import ContextHead, HeadConfig
from eddies.priors.residual_blocks import CausalResidualStack


class ResidualDynamicsConfig(HeadConfig):
    """Config of :class:`ResidualDynamics`."""

    mode: Literal["latent", "state"] = Field(
        default="latent", description="latent: MotionFlow mu_t = z_{t-1} + Delta_t; state: SRVP Euler state"
    )
    net: SpecOf("conditioners") | None = Field(
        default=None,
        description="latent: per-step net over the last `order` latents (null: causal residual "
        "blocks); state: the residual f(y, z) (required)",
    )
    hidden: int = Field(default=32, ge=1, description="channels of the residual blocks (latent, net=null)")
    dilations: list[int] = Field(default=[1, 2, 4], min_length=1, description="time dilations of the blocks")
    order: int = Field(default=2, ge=1, description="latents seen by a per-step net (latent mode)")
    dt: float = Field(default=1.0, gt=0.0, le=1.0, description="Euler step (state mode); 1/dt integer")
    log_scale_bound: float = Field(default=5.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> ResidualDynamicsConfig:
        euler_substeps(self.dt)
        if self.mode == "state" and self.net is None:
            raise ValueError("mode 'state' needs `net`, the residual f(y, z), e.g. {type: mlp, hidden: [64]}")
        if self.mode == "latent" and self.head is not None:
            raise ValueError("`head` is used by mode 'state' only (latent mode has no context)")
        if any(d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be positive, got {self.dilations}")
        return self


def euler_substeps(dt: float) -> int:
    """``1/dt``, which must be an integer (srvp.txt eq. 2)."""
    n = round(1.0 / dt)
    if n < 1 or abs(n * dt - 1.0) > 1e-6:
        raise ValueError(f"dt must be 1/n for an integer n (srvp.txt eq. 2), got {dt}")
    return n


@register(
    "priors", "residual_dynamics", version=1, config=ResidualDynamicsConfig,
    summary="Causal temporal prior: MotionFlow's residual latent mean or SRVP's Euler state dynamics.",
    examples=[
        {"config": {"hidden": 4}, "shape": (1,), "context_shape": None, "steps": 2},
        {"config": {"hidden": 4, "dilations": [1, 2]}, "shape": (2,), "context_shape": None, "steps": 4},
        {"config": {"hidden": 3, "dilations": [1]}, "shape": (2, 3, 3), "context_shape": None, "steps": 3},
        {"config": {"hidden": 3}, "shape": (2, 4), "context_shape": None, "steps": 3},
        {"config": {"net": {"type": "mlp", "hidden": [8]}, "order": 3}, "shape": (2,),
         "context_shape": None, "steps": 4},
        {"config": {"mode": "state", "net": {"type": "mlp", "hidden": [8]}, "dt": 0.5}, "shape": (1,),
         "context_shape": (3,), "steps": 2},
        {"config": {"mode": "state", "net": {"type": "mlp", "hidden": [8]}}, "shape": (3,),
         "context_shape": (2,), "steps": 3},
    ],
)
class ResidualDynamics(TemporalPrior):
    """``log p(z_1..T) = sum_t log N(z_t; mu_t, sigma_t^2)`` with causal parameters (see the module).

    ``z`` is ``(B, T, *shape)``; ``log_prob_steps`` returns ``(B, T)``; :meth:`step_parameters`
    returns the teacher-forced ``(mu, log sigma)``; ``sample(n, context, temperature, steps,
    history, dt)`` draws ``steps`` new steps ``(B, steps, *shape)`` continuing ``history``.

    Example::

        >>> import torch
        >>> prior = ResidualDynamics(hidden=8, shape=(4,))
        >>> z = torch.randn(2, 6, 4)
        >>> prior.log_prob_steps(z).shape
        torch.Size([2, 6])
        >>> prior.sample(steps=3, history=z[:, :2]).shape
        torch.Size([2, 3, 4])
    """

    def __init__(
        self,
        mode: str = "latent",
        net: Spec | None = None,
        head: Spec | None = None,
        hidden: int = 32,
        dilations: list[int] = (1, 2, 4),
        order: int = 2,
        dt: float = 1.0,
        log_scale_bound: float = 5.0,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        self.mode, self.dt, self.log_scale_bound = mode, float(dt), float(log_scale_bound)
        self.dim = math.prod(self.shape)
        channels, spatial = self.shape[0], self.shape[1:]
        if mode == "latent":
            if self.context_shape is not None:
                raise ShapeError(
                    f"ResidualDynamics(mode='latent') depends on z_<t only; got context_shape={self.context_shape}"
                )
            if net is None:
                if len(spatial) > 2:
                    raise ShapeError(f"ResidualDynamics: residual blocks take 0-2 spatial axes, shape {self.shape}")
                self.net = CausalResidualStack(channels, 2 * channels, hidden, len(spatial), tuple(dilations))
                self.window = self.net.receptive_field
            else:
                self.net = self._build(net, (order * channels, *spatial), (2 * channels, *spatial))
                self.window = int(order)
            self.per_step = net is not None
        else:
            if self.context_shape is None or len(self.context_shape) != 1 or net is None:
                raise ShapeError(
                    "ResidualDynamics(mode='state') needs context_shape=(S,) (the initial state y_0) "
                    f"and a net; got context_shape={self.context_shape}"
                )
            (states,) = self.context_shape
            self.net = self._build(net, (states + self.dim,), (states,))
            self.head = ContextHead((states,), (2 * self.dim,), head, "ResidualDynamics")

    def _build(self, spec: Spec, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
        module = spec.build(in_shape=in_shape, out_shape=out_shape)
        if tuple(module.output_shape()) != out_shape:
            raise ShapeError(
                f"ResidualDynamics: net {spec.name!r} states output {module.output_shape()}, needs {out_shape}"
            )
        return module

    # parameters ---------------------------------------------------------------------------
    def _latent_parameters(self, prev: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, log sigma)`` at every position of ``prev`` (B, L, *shape), where position ``t``
        holds ``z_{t-1}``; position ``t`` depends on ``prev[:, :t+1]`` only."""
        if self.per_step:
            L = prev.shape[1]
            padded = torch.cat([prev.new_zeros(prev.shape[0], self.window - 1, *self.shape), prev], 1)
            lags = [padded[:, self.window - 1 - j : self.window - 1 - j + L] for j in range(self.window)]
            x = torch.cat(lags, dim=2)
            raw = self.net(x.reshape(-1, *x.shape[2:])).reshape(*prev.shape[:2], 2 * self.shape[0], *self.shape[1:])
        else:
            raw = rearrange(self.net(rearrange(prev, "b t c ... -> b c t ...")), "b c t ... -> b t c ...")
        delta, raw_scale = raw.chunk(2, dim=2)
        return prev + delta, bounded_log_scale(raw_scale, self.log_scale_bound)

    def _state_parameters(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, log sigma)`` of ``z`` given states ``y`` (..., S), shaped (..., *shape)."""
        mean, raw_scale = self.head(y.reshape(-1, y.shape[-1])).chunk(2, dim=-1)
        full = (*y.shape[:-1], *self.shape)
        return mean.reshape(full), bounded_log_scale(raw_scale, self.log_scale_bound).reshape(full)

    def _euler(self, y: Tensor, z_t: Tensor, dt: float) -> list[Tensor]:
        """The ``1/dt`` Euler substeps from ``y`` with ``z_t`` held constant (srvp.txt eq. 2)."""
        path, inputs = [], z_t.reshape(z_t.shape[0], self.dim)
        for _ in range(euler_substeps(dt)):
            y = y + dt * self.net(torch.cat([y, inputs], dim=-1))
            path.append(y)
        return path

    def _check_sequence(self, z: Tensor, context: Tensor | None) -> None:
        lead = batch_shape(self, z)
        if len(lead) != 2:
            raise ShapeError(
                f"ResidualDynamics: z must have shape (batch, T, {', '.join(map(str, self.shape))}), "
                f"got {tuple(z.shape)}"
            )
        check_context(self, context, lead[:1])

    def states(self, z: Tensor, context: Tensor, dt: float | None = None) -> Tensor:
        """State mode: ``y_0 .. y_T`` with every Euler substep, shape (B, T/dt + 1, S)."""
        if self.mode != "state":
            raise ValueError("ResidualDynamics.states exists in mode 'state' only")
        self._check_sequence(z, context)
        path = [context]
        for t in range(z.shape[1]):
            path += self._euler(path[-1], z[:, t], self.dt if dt is None else dt)
        return torch.stack(path, dim=1)

    def step_parameters(
        self, z: Tensor, context: Tensor | None = None, dt: float | None = None
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced ``(mu_t, log sigma_t)`` for every step, each (B, T, *shape); causal."""
        self._check_sequence(z, context)
        if self.mode == "latent":
            return self._latent_parameters(torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1))
        dt = self.dt if dt is None else dt
        y = self.states(z[:, :-1], context, dt)[:, :: euler_substeps(dt)]  # y_0 .. y_{T-1}
        return self._state_parameters(y)

    def log_prob_steps(self, z: Tensor, context: Tensor | None = None, dt: float | None = None) -> Tensor:
        mean, log_scale = self.step_parameters(z, context, dt)
        return diag_normal_log_prob(z, mean, log_scale, len(self.shape))

    # sampling -----------------------------------------------------------------------------
    def rollout(
        self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0,
        steps: int = 1, history: Tensor | None = None, dt: float | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Step-by-step draw: new steps ``z`` and the ``(mu, log sigma)`` used, each (B, steps, *shape)."""
        t = check_temperature(self, temperature)
        if steps < 1:
            raise ShapeError(f"ResidualDynamics: steps must be >= 1, got {steps}")
        batch = self._sample_batch(n, context, history)
        ref = next(self.parameters())
        draws, means, scales = [], [], []
        if self.mode == "latent":
            prev = ref.new_zeros(batch, 1, *self.shape)
            if history is not None:
                prev = torch.cat([prev, history], dim=1)
            for _ in range(steps):
                mean, log_scale = (p[:, -1] for p in self._latent_parameters(prev[:, -self.window :]))
                z = mean + t * log_scale.exp() * torch.randn_like(mean)
                prev = torch.cat([prev, z.unsqueeze(1)], dim=1)
                draws.append(z)
                means.append(mean)
                scales.append(log_scale)
        else:
            dt = self.dt if dt is None else dt
            y = context if history is None else self.states(history, context, dt)[:, -1]
            for _ in range(steps):
                mean, log_scale = self._state_parameters(y)
                z = mean + t * log_scale.exp() * torch.randn_like(mean)
                y = self._euler(y, z, dt)[-1]
                draws.append(z)
                means.append(mean)
                scales.append(log_scale)
        return torch.stack(draws, 1), torch.stack(means, 1), torch.stack(scales, 1)

    def _sample_batch(self, n: int | None, context: Tensor | None, history: Tensor | None) -> int:
        sizes = {}
        if history is not None:
            self._check_sequence(history, context)
            sizes["history"] = history.shape[0]
        check_context(self, context, None)
        if context is not None:
            sizes["context"] = context.shape[0]
        if n is not None:
            sizes["n"] = int(n)
        if not sizes or len(set(sizes.values())) != 1:
            raise ShapeError(
                f"ResidualDynamics: sample needs one batch size from n, history or context; got {sizes or 'none'}"
            )
        return next(iter(sizes.values()))

    def sample(
        self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0,
        steps: int = 1, history: Tensor | None = None, dt: float | None = None,
    ) -> Tensor:
        """``steps`` new steps (B, steps, *shape), continuing ``history`` (B, T0, *shape) if given."""
        return self.rollout(n, context, temperature, steps, history, dt)[0]
