"""MotionFlow's dynamic latent prior: a causal Gaussian whose mean is a residual update of ``z_{t-1}``.

Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction of Motion Dynamics",
IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt, section 4.4, eqs. 8-12). The flow latents
``z_1..T`` of the frames are scored autoregressively, ``p(z) = prod_t p(z_t | z_1:t-1)`` (eq. 8),
each factor a conditionally factorised Gaussian ``N(z_t; mu_t, sigma_t^2)`` (eq. 9), with a
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

``log sigma = b * tanh(raw / b)`` (:func:`eddies.core.bounds.soft_bound`, ``b =
log_scale_bound``). The density, :meth:`step_distribution` and the step-by-step sampling loop
are those of :class:`eddies.priors.gaussian_steps.GaussianStepPrior`. The prior takes no
context (``context_shape=None``): its only condition is the past of the sequence.
"""

from __future__ import annotations

import torch
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor

from eddies.core import ComponentConfig, ShapeError, Spec, SpecOf, register
from eddies.core.bounds import soft_bound
from eddies.priors.gaussian_steps import GaussianStepPrior
from eddies.priors.residual_blocks import CausalResidualStack


class ResidualLatentConfig(ComponentConfig):
    """Config of :class:`ResidualLatent`."""

    net: SpecOf("conditioners") | None = Field(
        default=None, description="per-step net over the last `order` latents (null: causal residual blocks)"
    )
    hidden: int = Field(default=32, ge=1, description="channels of the residual blocks (net: null)")
    dilations: list[int] = Field(default=[1, 2, 4], min_length=1, description="time dilations of the blocks")
    order: int = Field(default=2, ge=1, description="latents seen by a per-step net")
    log_scale_bound: float = Field(default=5.0, gt=0.0, description="soft bound b on |log sigma|")

    @model_validator(mode="after")
    def _check(self) -> ResidualLatentConfig:
        if any(d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be positive, got {self.dilations}")
        return self


@register(
    "priors", "residual_latent", version=1, config=ResidualLatentConfig,
    summary="MotionFlow's causal temporal prior: mu_t = z_{t-1} + Delta_t(z_<t) (eqs. 8-12).",
    examples=[
        {"config": {"hidden": 4}, "shape": (1,), "context_shape": None, "steps": 2},
        {"config": {"hidden": 4, "dilations": [1, 2]}, "shape": (2,), "context_shape": None, "steps": 4},
        {"config": {"hidden": 3, "dilations": [1]}, "shape": (2, 3, 3), "context_shape": None, "steps": 3},
        {"config": {"hidden": 3}, "shape": (2, 4), "context_shape": None, "steps": 3},
        {"config": {"net": {"type": "mlp", "hidden": [8]}, "order": 3}, "shape": (2,),
         "context_shape": None, "steps": 4},
    ],
)
class ResidualLatent(GaussianStepPrior):
    """``log p(z_1..T) = sum_t log N(z_t; z_{t-1} + Delta_t, sigma_t^2)``, ``(Delta_t, log sigma_t)``
    from ``z_<t`` (see the module docstring).

    ``z`` is ``(B, T, *shape)`` with ``shape = (C,)``, ``(C, L)`` or ``(C, H, W)``;
    ``log_prob_steps`` returns ``(B, T)``; :meth:`step_parameters` the teacher-forced
    ``(mu, log sigma)``; :meth:`step_distribution` the same as an ``Independent(Normal)``;
    ``sample(n, temperature=, steps=, history=)`` draws ``steps`` new steps ``(B, steps, *shape)``
    continuing ``history``.

    Example::

        >>> import torch
        >>> prior = ResidualLatent(hidden=8, shape=(4,))
        >>> z = torch.randn(2, 6, 4)
        >>> prior.log_prob_steps(z).shape
        torch.Size([2, 6])
        >>> prior.step_distribution(z).batch_shape, prior.step_distribution(z).event_shape
        (torch.Size([2, 6]), torch.Size([4]))
        >>> prior.sample(steps=3, history=z[:, :2]).shape
        torch.Size([2, 3, 4])
    """

    def __init__(
        self,
        net: Spec | None = None,
        hidden: int = 32,
        dilations: list[int] = (1, 2, 4),
        order: int = 2,
        log_scale_bound: float = 5.0,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        self.log_scale_bound = float(log_scale_bound)
        if self.context_shape is not None:
            raise ShapeError(
                f"ResidualLatent depends on z_<t only; got context_shape={self.context_shape} "
                "(use euler_state for a prior driven by a state)"
            )
        channels, spatial = self.shape[0], self.shape[1:]
        self.per_step = net is not None
        if net is None:
            if len(spatial) > 2:
                raise ShapeError(f"ResidualLatent: residual blocks take 0-2 spatial axes, shape {self.shape}")
            self.net = CausalResidualStack(channels, 2 * channels, hidden, len(spatial), tuple(dilations))
            self.window = self.net.receptive_field
        else:
            in_shape, out_shape = (order * channels, *spatial), (2 * channels, *spatial)
            self.net = net.build(in_shape=in_shape, out_shape=out_shape)
            if tuple(self.net.output_shape()) != out_shape:
                raise ShapeError(
                    f"ResidualLatent: net {net.name!r} states output {self.net.output_shape()}, needs {out_shape}"
                )
            self.window = int(order)

    def _residual_parameters(self, prev: Tensor) -> tuple[Tensor, Tensor]:
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
        return prev + delta, soft_bound(raw_scale, self.log_scale_bound)

    def step_parameters(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced ``(mu_t, log sigma_t)`` for every step, each (B, T, *shape); causal."""
        self.check_sequence(z, context)
        return self._residual_parameters(torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1))

    # generation hooks: the state is the past (B, L, *shape) with z_0 = 0 in front -----------
    def _initial_state(self, batch: int, context: Tensor | None, history: Tensor | None) -> Tensor:
        ref = next(self.parameters())
        prev = ref.new_zeros(batch, 1, *self.shape)
        return prev if history is None else torch.cat([prev, history], dim=1)

    def _next_parameters(self, prev: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_scale = self._residual_parameters(prev[:, -self.window :])
        return mean[:, -1], log_scale[:, -1]

    def _advance(self, prev: Tensor, z: Tensor) -> Tensor:
        keep = max(0, prev.shape[1] - self.window + 1)  # the next step sees the last `window` only
        return torch.cat([prev[:, keep:], z.unsqueeze(1)], dim=1)
