"""Model kind ``latent_dynamics_vae``: SRVP, a latent state moved by residual Euler steps, frames decoded from it.

Reference: Franceschi, Delasalles, Chen, Lamprier & Gallinari, "Stochastic Latent Residual Video
Prediction", ICML 2020, arXiv:2002.09219 (srvp.txt, sections 3-4, appendix A and C); the
protocol page ../shared/protocols/srvp_smmnist.md. The data are a condition ``x`` of ``k``
frames and a target ``y`` of ``T`` frames, both ``(C, H, W)`` in ``[0, 1]`` (task
``moving_mnist``); SRVP's sequence ``x_1..x_L`` is their concatenation, ``L = k + T``.

Generative model (eqs. 1-3, with SRVP's indices: ``y_1`` is the first state)::

    y_1 ~ N(0, I)                                       prior_y (standard_normal)
    z_t ~ N(mu(y_{t-1}), diag sigma(y_{t-1})^2)         t = 2..L, the head of ``dynamics``
    y_{t+dt} = y_t + dt f(y_t, z_{floor(t)+1})           eq. 2, the net f of ``dynamics`` (euler_state)
    x_t ~ N(g(y_t, w), nu I)                            eqs. 1 and 3, the ``decoder`` g of [y_t ; w]

Inference (eq. 6 and section 3.3): every frame is encoded independently, ``x~_t = h(x_t)``
(``encoder``, DCGAN on Moving MNIST); ``q(y_1 | x_1:k)`` is a diagonal Gaussian whose parameters
an MLP computes from the concatenated first ``k`` encodings (``posterior_y``, a ``diag_gaussian``
whose head is that MLP); ``q(z_t | x_1:t)`` is a diagonal Gaussian from the output at ``t`` of an
LSTM over the encodings (``posterior_rnn``, then ``posterior_z`` with a linear head: "a 1-layer
LSTM of 256 then a linear layer"). The content variable is ``w = c(x_c)`` with ``c`` permutation
invariant (section 3.2, eq. 3): ``w = content_net(sum_i content_pre(x~_i))`` over ``k_w`` frames
(``content_frames``), drawn uniformly among the ``L`` frames of each training sequence (against
temporal information leaking into ``w``) and the last ``k_w`` known frames otherwise.

Training minimises, per sequence, minus eq. 8 with SRVP's ``beta`` on the ``z`` terms (C.3)::

    loss = - sum_t log N(x_t; g(y~_t, w), nu I)                    rec_nll     (t = 1..L)
           + KL(q(y_1 | x_1:k) || N(0, I))                         kl_y
           + beta_z sum_t KL(q(z_t | x_1:t) || p(z_t | y~_{t-1}))  kl_z        (t = 2..L)
           + lambda sum_t ||f(y~_{t-1}, z~_t)||_2                  f_norm      (not squared)

with one draw ``y~_1, z~_2:L`` from ``q`` (reparameterised) and the states ``y~`` it produces;
eq. 7's ELBO is ``-(rec_nll + kl_y + kl_z)`` (``beta_z = 1``, ``lambda = 0``). Both KL terms are
in closed form, ``torch.distributions.kl_divergence`` of the distributions the priors hand out
(``posterior_y.distribution``, ``prior_y.distribution``, ``posterior_z.distribution``,
``dynamics.state_distribution``). With ``dt < 1`` the penalty is ``sum_s dt ||f||`` over the Euler
substeps (the same sum for ``dt = 1``); with MLP dynamics it is the norm of the state change.
:meth:`LatentDynamicsVAE.loss` returns ``loss`` and, per sequence and averaged over the batch,
``rec_nll``, ``kl_y``, ``kl_z``, ``f_norm`` and ``nelbo`` (``= -ELBO``, an upper bound on ``-log
p(x_1:L | w)``). There is no tractable density, so :meth:`log_prob` raises (the contract's
"``log_prob`` where it is tractable"); :meth:`LatentDynamicsVAE.elbo` is the one-draw bound per
row, and the trainer's finite-step checks read ``loss`` and ``rec_nll``.

Generation (Fig. 1c): the ``k`` conditioning frames (and ``prefix`` target frames) are encoded
once; ``y_1 ~ q(y_1 | x_1:k)`` and ``z_t ~ q(z_t | x_1:t)`` over the known frames give the state
at the last known frame, then ``z_t ~ p(z_t | y_{t-1})`` and Euler steps carry it on for
``horizon`` frames; every frame is the decoder's mean ``g(y_t, w)`` with ``w`` from the last
``k_w`` known frames. ``temperature`` scales the spread of every latent draw (0: the mean path of
``q`` and ``p``). ``dt`` may differ from training (srvp.txt section 4, "Varying frame rate in
testing"): with ``dt = 1/2`` there are twice as many Euler steps, ``z`` is held over each frame
interval (eq. 2), and the frames at integer times are decoded (``every_state=True`` decodes all
``horizon / dt`` states). ``generation_dt`` sets it for :meth:`sample` and :meth:`predict`.

Switches: ``dynamics.residual: false`` is the "MLP dynamics" ablation of table 2 (``y_t =
f(y_{t-1}, z_t)``); ``z_size: 0`` is "without z" (a deterministic latent ODE: ``f(y)`` only,
no ``q(z)`` and no ``kl_z``); ``observation_noise_is: std`` reads ``observation_noise`` as a
standard deviation as the authors' code does (the paper: a variance ``nu``; equal for ``nu = 1``,
SRVP's Moving MNIST value); ``content_pre`` / ``content_size`` give the code's ``w`` (a
Linear + ReLU per frame to 256, summed, then Linear + Tanh: protocol page, item 2).

Example (16 x 16 frames, 2 conditioning and 3 target frames)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec({"x": (2, 1, 16, 16), "y": (3, 1, 16, 16)})
    >>> mlp = {"type": "mlp", "hidden": [8]}
    >>> model = build({"type": "latent_dynamics_vae", "encoding_size": 8, "state_size": 4, "z_size": 3,
    ...                "encoder": {"type": "dcgan_encoder", "channels": 4},
    ...                "decoder": {"type": "dcgan_decoder", "channels": 4},
    ...                "posterior_y": {"type": "diag_gaussian", "head": mlp},
    ...                "posterior_rnn": {"type": "lstm", "hidden_size": 8}, "content_net": mlp,
    ...                "dynamics": {"type": "euler_state", "net": mlp, "head": mlp}}, "models", data=data)
    >>> batch = {"x": torch.rand(5, 2, 1, 16, 16), "y": torch.rand(5, 3, 1, 16, 16)}
    >>> sorted(model.loss(batch))
    ['f_norm', 'kl_y', 'kl_z', 'loss', 'nelbo', 'rec_nll']
    >>> _ = model.eval()
    >>> model.sample(batch, samples=4).shape, model.predict(batch, horizon=6).shape
    (torch.Size([4, 5, 3, 1, 16, 16]), torch.Size([5, 6, 1, 16, 16]))
    >>> model.generate(batch, horizon=6, dt=0.5, every_state=True).shape   # twice the frame rate
    torch.Size([5, 12, 1, 16, 16])
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import repeat
from pydantic import Field
from torch import Tensor
from torch.distributions import Independent, kl_divergence

from eddies.core.errors import RecipeError, ShapeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec
from eddies.models.slots import build_slot, checked_condition, known_prefix, sequence_span
from eddies.priors.euler_state import euler_substeps as _euler_substeps

_MLP_INFERENCE = {"type": "mlp", "hidden": [256, 256]}  # srvp.txt C.2: 3 linear layers of 256, ReLU
_MLP_FORWARD = {"type": "mlp", "hidden": [512, 512, 512]}  # 4 linear layers of 512, ReLU


class LatentDynamicsVAEConfig(ComponentConfig):
    encoder: SpecOf("conditioners") = Field(
        {"type": "dcgan_encoder", "channels": 64}, description="h: frame (C, H, W) -> encoding (E,) (srvp.txt C.2: DCGAN)")
    decoder: SpecOf("conditioners") = Field(
        {"type": "dcgan_decoder", "channels": 64}, description="g: [y_t ; w] -> frame mean (C, H, W); "
        "no skip connections on Moving MNIST (C.2)")
    encoding_size: int = Field(128, ge=1, description="E, the size of a frame encoding x~_t (C.2: 128)")
    state_size: int = Field(20, ge=1, description="S, the size of y (C.2: 20 on Moving MNIST)")
    z_size: int = Field(20, ge=0, description="size of z (C.2: 20); 0: the 'without z' ablation (deterministic)")
    posterior_y: SpecOf("priors") = Field(
        {"type": "diag_gaussian", "head": _MLP_INFERENCE},
        description="q(y_1 | x_1:k): a Gaussian from the concatenated first k encodings (section 3.3)")
    posterior_rnn: SpecOf("conditioners") = Field(
        {"type": "lstm", "hidden_size": 256}, description="the filtering LSTM over encodings for q(z_t | x_1:t)")
    posterior_z: SpecOf("priors") = Field(
        {"type": "diag_gaussian"}, description="q(z_t | x_1:t) from the LSTM's output (linear head)")
    prior_y: SpecOf("priors") = Field({"type": "standard_normal"}, description="p(y_1) (eq. 1: N(0, I))")
    dynamics: SpecOf("priors") = Field(
        {"type": "euler_state", "net": _MLP_FORWARD, "head": _MLP_FORWARD, "init_gain": 1.41},
        description="p(z_t | y_t-1) and the Euler step y + dt f(y, z) (euler_state; eqs. 1-2)")
    content_frames: int | None = Field(None, ge=1, description="k_w, frames summed into w (null: the "
                                       "conditioning frames' number, C.2: 5)")
    content_size: int | None = Field(None, ge=1, description="size of w (null: E, C.2; the authors' code: 256)")
    content_pre: SpecOf("conditioners") | None = Field(
        None, description="per-frame net (E,) -> (content_size,) before the sum; null: none (the code: Linear + ReLU)")
    content_net: SpecOf("conditioners") = Field(
        _MLP_INFERENCE, description="the MLP after the sum (section 3.2) -> (content_size,) (the code: Linear + Tanh)")
    content_sampling: Literal["random", "last"] = Field(
        "random", description="training: w from k_w frames drawn among all L frames (section 3.2), or the last "
        "k_w conditioning frames (always so outside training)")
    beta_z: float = Field(1.0, ge=0.0, description="weight of the z KL terms (C.3: 2 on Moving MNIST)")
    f_penalty: float = Field(1.0, ge=0.0, description="lambda of eq. 8 on sum_t ||f||_2 (C.3: 1)")
    observation_noise: float = Field(1.0, gt=0.0, description="nu of N(g(y, w), nu I) (C.3: 1 on Moving MNIST)")
    observation_noise_is: Literal["variance", "std"] = Field(
        "variance", description="nu is a variance (the paper) or a standard deviation (the authors' code)")
    generation_dt: float | None = Field(None, gt=0.0, le=1.0, description="Euler step of sample/predict "
                                        "(null: the training dt; 1/2: srvp.txt section 4)")
    samples: int = Field(1, ge=1, description="draws averaged by predict() (1: one random sample, as for "
                         "deterministic Moving MNIST)")
    temperature: float = Field(1.0, ge=0.0, description="temperature of predict()")


@register(
    "models", "latent_dynamics_vae", version=1, config=LatentDynamicsVAEConfig,
    summary="SRVP: latent state y moved by residual Euler steps y + dt f(y, z), content w, trained by the ELBO (eqs. 7-8).",
)
class LatentDynamicsVAE(Model):
    """SRVP (module docstring): ``loss`` is minus eq. 8; ``sample``/``predict``/``generate`` roll the
    latent state out from the conditioning frames."""

    kind = "latent_dynamics_vae"

    def __init__(
        self, encoder: Spec, decoder: Spec, encoding_size: int = 128, state_size: int = 20, z_size: int = 20,
        posterior_y: Spec = None, posterior_rnn: Spec = None, posterior_z: Spec = None, prior_y: Spec = None,
        dynamics: Spec = None, content_frames: int | None = None, content_size: int | None = None,
        content_pre: Spec | None = None, content_net: Spec = None, content_sampling: str = "random",
        beta_z: float = 1.0, f_penalty: float = 1.0, observation_noise: float = 1.0,
        observation_noise_is: str = "variance", generation_dt: float | None = None, samples: int = 1,
        temperature: float = 1.0, *, data: DataSpec,
    ):
        super().__init__(data)
        target, condition = tuple(data.target_shape), data.condition_shape
        if len(target) != 4 or condition is None or len(condition) != 4 or tuple(condition[1:]) != target[1:]:
            raise RecipeError(
                f"{self.kind} needs conditioning frames (k, C, H, W) and target frames (T, C, H, W) of one frame "
                f"shape; got condition {data.condition!r} of shape {condition} and target {data.target!r} of shape "
                f"{target}", "task")
        self.frame, self.k, self.steps = target[1:], int(condition[0]), int(target[0])
        E, S, Z = encoding_size, state_size, z_size
        self.state_size, self.z_size = S, Z
        self.content_frames = self.k if content_frames is None else content_frames
        if self.content_frames > self.k:
            raise RecipeError(f"{self.kind}: content_frames {self.content_frames} exceeds the {self.k} conditioning "
                              "frames (w is computed from the last content_frames known frames)", "model.content_frames")
        W = E if content_size is None else content_size
        self.content_sampling, self.beta_z, self.f_penalty = content_sampling, float(beta_z), float(f_penalty)
        nu = float(observation_noise)
        self.observation_std = math.sqrt(nu) if observation_noise_is == "variance" else nu
        if generation_dt is not None:
            _euler_substeps(generation_dt)
        self.generation_dt, self.default_samples, self.default_temperature = generation_dt, samples, temperature

        frame = self.frame
        self.encoder = build_slot(self.kind, "encoder", encoder, f"in_shape={frame} and out_shape=({E},)",
                                  in_shape=frame, out_shape=(E,))
        self.decoder = build_slot(self.kind, "decoder", decoder, f"in_shape=({S + W},) ([y ; w]) and out_shape={frame}",
                                  in_shape=(S + W,), out_shape=frame)
        for slot, net, want in (("encoder", self.encoder, (E,)), ("decoder", self.decoder, frame)):
            if tuple(net.output_shape()) != tuple(want):
                raise RecipeError(f"{self.kind}: the {slot} states output {net.output_shape()}, needs {want}",
                                  f"model.{slot}")
        self.posterior_y = build_slot(self.kind, "posterior_y", posterior_y,
                                      f"shape=({S},) and context_shape=({self.k * E},)", shape=(S,),
                                      context_shape=(self.k * E,))
        self.prior_y = build_slot(self.kind, "prior_y", prior_y, f"shape=({S},) and context_shape=None",
                                  shape=(S,), context_shape=None)
        self.dynamics = build_slot(self.kind, "dynamics", dynamics, f"shape=({Z},) and context_shape=({S},)",
                                   shape=(Z,), context_shape=(S,))
        missing = [m for m in ("trajectory", "generate", "state_distribution") if not hasattr(self.dynamics, m)]
        if missing:
            raise RecipeError(f"{self.kind}: dynamics {dynamics.name!r} is not a state-dynamics prior (no "
                              f"{', '.join(missing)}); use euler_state", "model.dynamics")
        self.train_dt = float(self.dynamics.dt)
        if Z:
            self.posterior_rnn = build_slot(self.kind, "posterior_rnn", posterior_rnn, f"in_shape=({E},)",
                                            in_shape=(E,))
            hidden = tuple(self.posterior_rnn.output_shape())
            self.posterior_z = build_slot(self.kind, "posterior_z", posterior_z,
                                          f"shape=({Z},) and context_shape={hidden} (the LSTM's output)",
                                          shape=(Z,), context_shape=hidden)
        else:  # without z: no q(z), nothing to build
            self.posterior_rnn = self.posterior_z = None
        pre_out = E
        self.content_pre = None
        if content_pre is not None:
            self.content_pre = build_slot(self.kind, "content_pre", content_pre, f"in_shape=({E},) and out_shape=({W},)",
                                          in_shape=(E,), out_shape=(W,))
            pre_out = W
        self.content_net = build_slot(self.kind, "content_net", content_net,
                                      f"in_shape=({pre_out},) and out_shape=({W},)", in_shape=(pre_out,), out_shape=(W,))

    # pieces --------------------------------------------------------------------------------
    def encode(self, frames: Tensor) -> Tensor:
        """``x~_t = h(x_t)`` for frames ``(B, L, C, H, W)``: ``(B, L, E)``."""
        return self.encoder(frames)

    def content(self, encodings: Tensor) -> Tensor:
        """``w = content_net(sum_i content_pre(x~_i))`` of encodings ``(B, k_w, E)``: ``(B, W)`` (eq. 3)."""
        pre = encodings if self.content_pre is None else self.content_pre(encodings)
        return self.content_net(pre.sum(dim=1))

    def q_y(self, encodings: Tensor) -> Independent:
        """``q(y_1 | x_1:k)`` from the first ``k`` encodings of ``(B, L, E)``."""
        return self.posterior_y.distribution(encodings[:, : self.k].flatten(1))

    def q_z(self, encodings: Tensor) -> Independent | None:
        """``q(z_t | x_1:t)`` for ``t = 2..L`` (batch shape ``(B, L - 1)``); ``None`` without z."""
        if self.posterior_rnn is None:
            return None
        return self.posterior_z.distribution(self.posterior_rnn(encodings)[:, 1:])

    def decode(self, states: Tensor, w: Tensor) -> Tensor:
        """Frame means ``g(y_t, w)``: states ``(B, n, S)`` and ``w`` ``(B, W)`` -> ``(B, n, C, H, W)``."""
        return self.decoder(torch.cat([states, w[:, None].expand(-1, states.shape[1], -1)], dim=-1))

    @staticmethod
    def _draw(dist: Independent, temperature: float = 1.0, noise: Tensor | None = None) -> Tensor:
        base = dist.base_dist
        eps = torch.randn_like(base.loc) if noise is None else noise
        return base.loc + temperature * base.scale * eps

    def _frames(self, batch: dict[str, Tensor]) -> Tensor:
        x = checked_condition(self.kind, self.data, batch)
        y = batch.get(self.data.target)
        if y is None or y.dim() != x.dim() or y.shape[0] != x.shape[0] or tuple(y.shape[2:]) != self.frame:
            raise ShapeError(f"{self.kind}: the batch needs the target {self.data.target!r} of shape (B, T, "
                             f"{', '.join(map(str, self.frame))}) beside the condition, got "
                             f"{None if y is None else tuple(y.shape)}")
        return torch.cat([x, y.to(x.dtype)], dim=1)

    def _content_index(self, rows: int, length: int, device: torch.device) -> Tensor:
        if self.training and self.content_sampling == "random":
            return torch.rand(rows, length, device=device).argsort(dim=1)[:, : self.content_frames]
        start = self.k - self.content_frames
        return torch.arange(start, self.k, device=device).expand(rows, -1)

    # training ------------------------------------------------------------------------------
    def terms(self, batch: dict[str, Tensor], noise: dict[str, Tensor] | None = None,
              content_index: Tensor | None = None) -> dict[str, Tensor]:
        """Per-sequence terms of eq. 8, each ``(B,)``: ``rec_nll``, ``kl_y``, ``kl_z``, ``f_norm``.

        ``noise`` may fix the standard normal draws of the reparameterisation (``"y"``: ``(B, S)``,
        ``"z"``: ``(B, L - 1, Z)``) and ``content_index`` ``(B, k_w)`` the frames of ``w``, so a test
        can recompute the bound by hand.
        """
        frames = self._frames(batch)
        rows, length = frames.shape[:2]
        noise = noise or {}
        enc = self.encode(frames)
        q_y = self.q_y(enc)
        y1 = self._draw(q_y, 1.0, noise.get("y"))
        q_z = self.q_z(enc)
        z = enc.new_zeros(rows, length - 1, 0) if q_z is None else self._draw(q_z, 1.0, noise.get("z"))
        states, rates = self.dynamics.trajectory(z, y1)
        n = _euler_substeps(self.train_dt)
        if content_index is None:
            content_index = self._content_index(rows, length, frames.device)
        w = self.content(torch.gather(enc, 1, content_index[..., None].expand(-1, -1, enc.shape[-1])))
        mean = self.decode(states[:, ::n], w)
        rec = -torch.distributions.Normal(mean, self.observation_std).log_prob(frames).flatten(1).sum(1)
        kl_y = kl_divergence(q_y, self.prior_y.distribution())
        if q_z is None:
            kl_z = rec.new_zeros(rows)
        else:
            kl_z = kl_divergence(q_z, self.dynamics.state_distribution(states[:, :-1:n])).sum(1)
        f_norm = (self.train_dt * rates.norm(dim=-1)).sum(1)
        return {"rec_nll": rec, "kl_y": kl_y.expand(rows), "kl_z": kl_z, "f_norm": f_norm}

    def elbo(self, batch: dict[str, Tensor]) -> Tensor:
        """Eq. 7 per row, ``(B,)``, from one draw of ``q``: a stochastic lower bound on ``log p(x_1:L | w)``."""
        t = self.terms(batch)
        return -(t["rec_nll"] + t["kl_y"] + t["kl_z"])

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Minus eq. 8 with ``beta_z`` (module docstring), averaged over the batch, and its parts."""
        t = self.terms(batch)
        loss = t["rec_nll"] + t["kl_y"] + self.beta_z * t["kl_z"] + self.f_penalty * t["f_norm"]
        out = {"loss": loss.mean()}
        out.update({k: v.detach().mean() for k, v in t.items()})
        out["nelbo"] = (t["rec_nll"] + t["kl_y"] + t["kl_z"]).detach().mean()
        return out

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{self.kind} has no tractable log_prob: elbo(batch) is the one-draw lower bound")

    # generation ----------------------------------------------------------------------------
    def generate(
        self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
        prefix: int | None = None, horizon: int | None = None, dt: float | None = None,
        every_state: bool = False,
    ) -> Tensor:
        """Frames ``(B, prefix + horizon, C, H, W)`` (``(N, B, ...)`` with ``samples=N``): the
        ``prefix`` known target frames, then the decoded rollout (module docstring). ``dt``: the
        Euler step (default ``generation_dt``, else the training one); ``every_state`` decodes
        every substep, so ``horizon / dt`` frames follow the prefix."""
        n_draws = self.check_samples("generate", samples)
        if temperature < 0:
            raise ValueError(f"{self.kind}: temperature must be >= 0, got {temperature}")
        dt = float(dt if dt is not None else self.generation_dt if self.generation_dt is not None else self.train_dt)
        sub = _euler_substeps(dt)
        x = checked_condition(self.kind, self.data, batch)
        prefix, horizon = sequence_span(self.kind, "generate", self.steps, prefix, horizon)
        given = known_prefix(self.kind, "generate", self.data, batch, x, prefix)
        known = torch.cat([x, given], dim=1)
        rows, n_known = known.shape[:2]
        enc = self.encode(known)  # once per condition
        w = self.content(enc[:, n_known - self.content_frames:])
        q_y = self.q_y(enc)
        q_z = self.q_z(enc)

        def rep(t: Tensor) -> Tensor:
            return repeat(t, "b ... -> (n b) ...", n=n_draws)

        q_y = Independent(torch.distributions.Normal(rep(q_y.base_dist.loc), rep(q_y.base_dist.scale)), 1)
        y1 = self._draw(q_y, temperature)
        if q_z is None:
            z = y1.new_zeros(rows * n_draws, n_known - 1, 0)
        else:
            base = q_z.base_dist
            z = self._draw(Independent(torch.distributions.Normal(rep(base.loc), rep(base.scale)), 1), temperature)
        y_known = self.dynamics.trajectory(z, y1, dt)[0][:, -1] if n_known > 1 else y1
        out = [repeat(given, "b ... -> n b ...", n=n_draws)]
        if horizon:
            _, states, _ = self.dynamics.generate(y_known, horizon, temperature, dt)
            states = states[:, 1:] if every_state else states[:, sub::sub]
            frames = self.decode(states, rep(w))
            out.append(frames.reshape(n_draws, rows, *frames.shape[1:]))
        result = torch.cat(out, dim=2)
        return result[0] if samples is None else result

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """Draws ``(B, prefix + horizon, C, H, W)`` or ``(N, B, ...)``: :meth:`generate` at ``generation_dt``."""
        return self.generate(batch, samples, temperature, prefix, horizon)

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The mean of ``samples`` draws (default the config's ``samples``: 1, one random draw) at
        ``temperature`` (default the config's); temperature 0 is the single mean path."""
        n = self.default_samples if samples is None else self.check_samples("predict", samples)
        t = self.default_temperature if temperature is None else temperature
        if t == 0:
            n = 1
        return self.generate(batch, n, t, prefix, horizon).mean(dim=0)
