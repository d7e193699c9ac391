"""SRVP's latent dynamics: a deterministic state moved by Euler steps, driving a Gaussian over ``z_t``.

Franceschi, Delasalles, Chen, Lamprier & Gallinari, "Stochastic Latent Residual Video
Prediction", ICML 2020, arXiv:2002.09219 (srvp.txt, section 3, eqs. 1-2). A deterministic state
``y`` evolves by residual Euler steps

    y <- y + dt * f(y, z_t),        1/dt substeps per frame, z_t held constant   (eq. 2)

and ``p(z_t | y_{t-1}) = N(mu(y_{t-1}), diag sigma(y_{t-1})^2)`` (eq. 1). Index convention: the
context is the initial state ``y_0`` of shape ``(B, S)`` (``context_shape=(S,)``), SRVP's ``y_1``;
our ``z_t`` is SRVP's ``z_{t+1}`` and our ``y_t`` the integer-time state after ``t`` frames. ``f``
is the ``net`` spec (required; built with ``in_shape=(S + d,)``, ``out_shape=(S,)``, ``d =
prod(shape)``); the map from ``y`` to ``(mu, log sigma)`` is ``head`` (one linear layer when
``null``). The prior of ``y_0`` itself (SRVP's ``y_1 ~ N(0, I)``) and the content variable ``w``
belong to the model, not to this prior.

``dt`` is a setting that every method also takes as an argument (``log_prob_steps``,
``step_parameters``, ``step_distribution``, ``rollout``, ``sample``, ``states``), so a model
trained with ``dt=1`` can generate with ``dt=1/2`` (srvp.txt section 4, "Varying frame rate in
testing"); :meth:`EulerState.states` returns every intermediate state for decoding at the finer
frame rate. ``log sigma = b * tanh(raw / b)`` (:func:`eddies.core.bounds.soft_bound`).

For SRVP's KL terms (srvp.txt eq. 8): :meth:`step_distribution` with the posterior's ``z`` gives
``p(z_t | y_{t-1})`` along the states those ``z`` produce, as an ``Independent(Normal)``, so
``torch.distributions.kl_divergence(q, prior.step_distribution(z, y0))`` is in closed form; during
generation, ``rollout(...).distribution()`` gives ``p(z_t | y_{t-1})`` of each generated step.
The density and the sampling loop are those of
:class:`eddies.priors.gaussian_steps.GaussianStepPrior`.

What the ``latent_dynamics_vae`` model kind (SRVP) needs besides (srvp.txt section 4 and C.2):

- ``residual: false`` is the "MLP dynamics" ablation of table 2, ``y_t = f(y_{t-1}, z_t)``
  instead of the residual update (only with ``dt = 1``: the update is not a rate, so it has no
  finer Euler step);
- ``init_gain`` initialises every linear and convolution weight of ``f`` orthogonally with that
  gain (C.2: 1.41 on Moving MNIST), biases unchanged;
- :meth:`EulerState.trajectory` returns the states together with the rates ``f(y, z_t)`` of
  every substep (the residuals whose norms eq. 8 penalises; with ``residual: false`` the state
  change ``y_t - y_{t-1}``), and :meth:`EulerState.generate` draws ``z`` from the prior and
  returns the states it produced, so a model decodes them without recomputing ``f``;
- an empty ``z`` (``shape=(0,)``) is the "without z" ablation: ``f(y)`` alone, a deterministic
  latent ODE (Chen et al. 2018), ``log p(z) = 0``; there is no head then.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.distributions import Independent

from eddies.core import ShapeError, Spec, SpecOf, register
from eddies.core.bounds import soft_bound
from eddies.priors.base import check_temperature, diag_normal
from eddies.priors.gaussian_steps import GaussianStepPrior, Rollout
from eddies.priors.head import ContextHead, HeadConfig


def euler_substeps(dt: float) -> int:
    """``1/dt``, which must be an integer (srvp.txt eq. 2)."""
    n = round(1.0 / dt)
    if n < 1 or abs(n * dt - 1.0) > 1e-6:
        raise ValueError(f"dt must be 1/n for an integer n (srvp.txt eq. 2), got {dt}")
    return n


class EulerStateConfig(HeadConfig):
    """Config of :class:`EulerState`."""

    net: SpecOf("conditioners") = Field(
        description="the residual f(y, z) of the Euler step, e.g. {type: mlp, hidden: [64]}"
    )
    head: SpecOf("conditioners") | None = Field(
        default=None, description="conditioner from a state y to (mu, raw log sigma); None = one linear layer"
    )
    dt: float = Field(default=1.0, gt=0.0, le=1.0, description="Euler step; 1/dt an integer")
    log_scale_bound: float = Field(default=5.0, gt=0.0, description="soft bound b on |log sigma|")
    residual: bool = Field(default=True, description="y <- y + dt f(y, z) (eq. 2); false: y <- f(y, z), "
                           "SRVP's 'MLP dynamics' ablation (needs dt = 1)")
    init_gain: float | None = Field(default=None, gt=0.0, description="orthogonal init of f's weights with "
                                    "this gain (srvp.txt C.2: 1.41); null: the net's own init")

    @model_validator(mode="after")
    def _check(self) -> EulerStateConfig:
        euler_substeps(self.dt)
        if not self.residual and self.dt != 1.0:
            raise ValueError("residual: false (y <- f(y, z)) has no Euler step: it needs dt = 1")
        return self


def _tanh_mlp(width: int) -> dict:
    return {"type": "mlp", "hidden": [width], "activation": "tanh"}


@register(
    "priors", "euler_state", version=1, config=EulerStateConfig,
    summary="SRVP's temporal prior: z_t ~ N(mu(y_{t-1}), sigma(y_{t-1})), y <- y + dt f(y, z_t) (eqs. 1-2).",
    # tanh nets: a ReLU net of a few units can be dead on every drawn row, which leaves a
    # parameter without gradient and fails the kit's gradient check by chance
    examples=[
        {"config": {"net": _tanh_mlp(8), "dt": 0.5}, "shape": (1,), "context_shape": (3,), "steps": 2},
        {"config": {"net": _tanh_mlp(8)}, "shape": (3,), "context_shape": (2,), "steps": 3},
        {"config": {"net": _tanh_mlp(6), "head": _tanh_mlp(4)}, "shape": (1,), "context_shape": (2,),
         "steps": 2},
        {"config": {"net": _tanh_mlp(6), "dt": 0.25}, "shape": (2, 2), "context_shape": (3,), "steps": 2},
        {"config": {"net": _tanh_mlp(6), "residual": False, "init_gain": 1.41}, "shape": (2,),
         "context_shape": (2,), "steps": 3},
    ],
)
class EulerState(GaussianStepPrior):
    """``log p(z_1..T | y_0) = sum_t log N(z_t; mu(y_{t-1}), sigma(y_{t-1})^2)`` with
    ``y_t = Euler(y_{t-1}, z_t)`` (see the module docstring).

    ``z`` is ``(B, T, *shape)`` and the context ``y_0`` is ``(B, S)``; ``log_prob_steps``,
    ``step_parameters``, ``step_distribution``, ``rollout``, ``sample`` and ``states`` take ``dt``
    (default: the configured one).

    Example::

        >>> import torch
        >>> from eddies.core import validate_spec
        >>> prior = EulerState(validate_spec({"type": "mlp", "hidden": [16]}, "conditioners"),
        ...                    shape=(4,), context_shape=(6,))
        >>> y0 = torch.randn(2, 6)
        >>> z = prior.sample(context=y0, steps=5)
        >>> z.shape, prior.log_prob_steps(z, y0).shape
        (torch.Size([2, 5, 4]), torch.Size([2, 5]))
        >>> prior.states(z, y0, dt=0.5).shape           # y_0, y_0.5, y_1, ..., y_5
        torch.Size([2, 11, 6])
        >>> prior.rollout(context=y0, steps=3, dt=0.5).distribution().batch_shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        net: Spec,
        head: Spec | None = None,
        dt: float = 1.0,
        log_scale_bound: float = 5.0,
        residual: bool = True,
        init_gain: float | None = None,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        self.dt, self.log_scale_bound, self.residual = float(dt), float(log_scale_bound), bool(residual)
        self._substeps(self.dt)
        self.dim = math.prod(self.shape)
        if self.context_shape is None or len(self.context_shape) != 1:
            raise ShapeError(
                "EulerState needs context_shape=(S,), the shape of the initial state y_0; "
                f"got context_shape={self.context_shape}"
            )
        (states,) = self.context_shape
        self.net = net.build(in_shape=(states + self.dim,), out_shape=(states,))
        if tuple(self.net.output_shape()) != (states,):
            raise ShapeError(f"EulerState: net {net.name!r} states output {self.net.output_shape()}, needs ({states},)")
        if self.dim == 0:  # no z: nothing to parameterise (a zero-width head is not a layer)
            if head is not None:
                raise ShapeError("EulerState: a head was given, but z is empty (shape with no elements)")
            self.head = None
        else:
            self.head = ContextHead((states,), (2 * self.dim,), head, "EulerState")
        if init_gain is not None:
            for m in self.net.modules():
                if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
                    nn.init.orthogonal_(m.weight, gain=init_gain)

    def _substeps(self, dt: float) -> int:
        n = euler_substeps(dt)
        if not self.residual and n != 1:
            raise ValueError(f"EulerState with residual=False (y <- f(y, z)) has no Euler step: dt must be 1, got {dt}")
        return n

    def _state_parameters(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, log sigma)`` of ``z`` given states ``y`` (..., S), shaped (..., *shape)."""
        full = (*y.shape[:-1], *self.shape)
        if self.head is None:
            empty = y.new_zeros(full)
            return empty, empty
        mean, raw_scale = self.head(y.reshape(-1, y.shape[-1])).chunk(2, dim=-1)
        return mean.reshape(full), soft_bound(raw_scale, self.log_scale_bound).reshape(full)

    def state_distribution(self, y: Tensor) -> Independent:
        """``p(z | y) = N(mu(y), diag sigma(y)^2)`` for states ``y`` (*batch, S), as an
        ``Independent(Normal)`` of batch shape ``batch`` and event shape :attr:`shape` (srvp.txt
        eq. 1), for a model that already holds the states (e.g. ``trajectory(...)[0][:, :-1]``)."""
        if y.dim() < 2 or y.shape[-1] != self.context_shape[0]:
            raise ShapeError(f"EulerState: states must have shape (*batch, {self.context_shape[0]}), got {tuple(y.shape)}")
        return diag_normal(*self._state_parameters(y), len(self.shape))

    def _euler(self, y: Tensor, z_t: Tensor, dt: float) -> tuple[list[Tensor], list[Tensor]]:
        """The ``1/dt`` Euler substeps from ``y`` with ``z_t`` held constant (srvp.txt eq. 2): the
        states after each substep and the rates ``f(y, z_t)`` (``residual=False``: ``y_new - y``)."""
        path, rates, inputs = [], [], z_t.reshape(z_t.shape[0], self.dim)
        for _ in range(self._substeps(dt)):
            out = self.net(torch.cat([y, inputs], dim=-1))
            if self.residual:
                rates.append(out)
                y = y + dt * out
            else:
                rates.append(out - y)
                y = out
            path.append(y)
        return path, rates

    def states(self, z: Tensor, context: Tensor, dt: float | None = None) -> Tensor:
        """``y_0 .. y_T`` with every Euler substep, shape (B, T/dt + 1, S); ``y_0`` is the context."""
        return self.trajectory(z, context, dt)[0]

    def trajectory(self, z: Tensor, context: Tensor, dt: float | None = None) -> tuple[Tensor, Tensor]:
        """``(states, rates)``: :meth:`states` (B, T/dt + 1, S) and the rate of every substep,
        (B, T/dt, S), ``rates[:, s] = f(states[:, s], z_t)`` for the ``z_t`` of that substep
        (``residual=False``: ``states[:, s + 1] - states[:, s]``), so ``states[:, s + 1] =
        states[:, s] + dt * rates[:, s]``."""
        self.check_sequence(z, context)
        return self._trajectory(z, context, self.dt if dt is None else dt)

    def _trajectory(self, z: Tensor, context: Tensor, dt: float) -> tuple[Tensor, Tensor]:
        path, rates = [context], []
        for t in range(z.shape[1]):
            ys, fs = self._euler(path[-1], z[:, t], dt)
            path += ys
            rates += fs
        return torch.stack(path, dim=1), (torch.stack(rates, dim=1) if rates else context.new_zeros(
            context.shape[0], 0, context.shape[-1]))

    def _states(self, z: Tensor, context: Tensor, dt: float) -> Tensor:
        """:meth:`states` of an already checked ``z`` and context."""
        return self._trajectory(z, context, dt)[0]

    def generate(
        self, context: Tensor, steps: int, temperature: float = 1.0, dt: float | None = None
    ) -> tuple[Rollout, Tensor, Tensor]:
        """``(rollout, states, rates)``: ``steps`` draws ``z_t ~ p(z_t | y_{t-1})`` at
        ``temperature`` from the initial state ``context`` (B, S), as :meth:`rollout` draws them,
        with the states (B, steps/dt + 1, S) and rates (B, steps/dt, S) of :meth:`trajectory`
        along the path, computed once."""
        t = check_temperature(self, temperature)
        dt = self.dt if dt is None else dt
        self._substeps(dt)
        self._sample_batch(None, context, None)
        if steps < 1:
            raise ShapeError(f"EulerState: steps must be >= 1, got {steps}")
        path, rates, draws, means, scales = [context], [], [], [], []
        for _ in range(steps):
            mean, log_scale = self._state_parameters(path[-1])
            z = mean + t * log_scale.exp() * torch.randn_like(mean)
            ys, fs = self._euler(path[-1], z, dt)
            path += ys
            rates += fs
            draws.append(z)
            means.append(mean)
            scales.append(log_scale)
        out = Rollout(torch.stack(draws, 1), torch.stack(means, 1), torch.stack(scales, 1))
        return out, torch.stack(path, dim=1), torch.stack(rates, dim=1)

    def step_parameters(
        self, z: Tensor, context: Tensor | None = None, dt: float | None = None
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced ``(mu_t, log sigma_t)`` of ``p(z_t | y_{t-1})``, each (B, T, *shape); causal."""
        self.check_sequence(z, context)
        dt = self.dt if dt is None else dt
        y = self._states(z[:, :-1], context, dt)[:, :: self._substeps(dt)]  # y_0 .. y_{T-1}
        return self._state_parameters(y)

    # generation hooks: the state is (y_{t-1}, dt) -------------------------------------------
    def _initial_state(
        self, batch: int, context: Tensor | None, history: Tensor | None, dt: float | None = None
    ) -> tuple[Tensor, float]:
        dt = self.dt if dt is None else dt
        self._substeps(dt)
        # rollout checked history and context (_sample_batch)
        return (context if history is None else self._states(history, context, dt)[:, -1]), dt

    def _next_parameters(self, state: tuple[Tensor, float]) -> tuple[Tensor, Tensor]:
        return self._state_parameters(state[0])

    def _advance(self, state: tuple[Tensor, float], z: Tensor) -> tuple[Tensor, float]:
        y, dt = state
        return self._euler(y, z, dt)[0][-1], dt
