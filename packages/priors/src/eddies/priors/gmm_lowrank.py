"""Gaussian mixture whose components have a diagonal-plus-low-rank *precision* (FRMDN).

Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020,
arXiv:2008.02144 (frmdn.txt).

frmdn.txt section 4, eqs. 10-13: ``p(z | c) = sum_k alpha_k N(z; mu_k, Lambda_k^{-1})`` with the
precision ``Lambda_k = D_k + U_k U_k^T``, ``D_k`` positive diagonal and ``U_k`` of shape
``d x r`` (``r`` is the paper's ``d'``; ``r = 0`` is the diagonal case). With ``delta = z - mu_k``
and the matrix determinant lemma (frmdn.txt proposition 4.1),

    log N_k(z) = -(d/2) log 2 pi + 1/2 [sum_i log D_ki + log det(I_r + U_k^T D_k^{-1} U_k)]
                 - 1/2 [sum_i D_ki delta_i^2 + ||U_k^T delta||^2],

the signs being those of a *precision* (``log det Lambda`` enters with ``+1/2``); then
``log p = logsumexp_k(log alpha_k + log N_k)``. No ``d x d`` matrix is formed: the cost is
``O(K d r^2 + K r^3)`` per sample (``O(K d r)`` when the parameters are shared by the batch and
the ``r x r`` capacitance ``C_k = I_r + W_k^T W_k``, ``W_k = D_k^{-1/2} U_k``, is computed once).
With per-row parameters and ``r <= 3`` the terms are elementwise dot products over ``d`` and
the pivots of an unrolled ``LDL^T`` recurrence, with a hand-written backward (:class:`LowRankTerms`).
The covariance ``Lambda^{-1}`` is diagonal *minus* low rank, which
``torch.distributions.LowRankMultivariateNormal`` cannot represent; :meth:`GMMLowRankPrecision.distribution`
therefore hands out the mixture with dense ``d x d`` precisions (for small ``d``: KL terms of
mixtures have no closed form anyway and need Monte Carlo).

Sampling is exact and batched: pick ``k ~ Categorical(alpha)``, then with ``eps ~ N(0, I_d)``
and ``eta ~ N(0, I_r)``, ``a = eps + W_k eta ~ N(0, I + W_k W_k^T)`` and
``x = D_k^{-1/2} (I + W_k W_k^T)^{-1} a`` (Woodbury: ``(I + W W^T)^{-1} a = a - W C^{-1} W^T a``,
one ``r x r`` Cholesky solve) has covariance ``D^{-1/2} (I + W W^T)^{-1} D^{-1/2} = Lambda^{-1}``;
``z = mu_k + T x`` at temperature ``T``. ``T`` scales the spread of each component; the
component weights are not tempered; ``T = 0`` returns the mean of the most probable component.

Parameters (frmdn.txt eqs. 5-7): ``alpha = softmax(o_alpha)``, ``mu = o_mu``,
``D = floor + softplus(o_D + s)`` (or ``floor + (1 - floor) exp(o_D)``) with ``s`` chosen so
that ``o_D = 0`` gives ``D = 1``; ``U = o_U / sqrt(d)``, so ``U U^T`` keeps its scale as ``d``
grows. ``clamp=(lo, hi)`` clips ``D`` as in frmdn.txt section 5.1 (the paper clips "the
diagonal elements of covariances" to ``[0.1, 1.9]``; here the clipped quantity is the diagonal
``D`` of the precision; clipped entries get no gradient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.distributions import (
    Categorical,
    Distribution,
    MixtureSameFamily,
    MultivariateNormal,
    ReshapeTransform,
    TransformedDistribution,
)

from eddies.core import Prior, register
from eddies.priors.base import LOG_2PI, batch_shape, check_context, check_temperature, sample_batch
from eddies.priors.head import ContextHead, HeadConfig, check_head_use


@dataclass
class LowRankPrecisionMixture:
    """Parameters of a mixture with precisions ``D_k + U_k U_k^T`` (leading axis: batch or 1).

    ``logits (N, K)``, ``means (N, K, d)``, ``diag (N, K, d) > 0``, ``factor (N, K, d, r)``;
    a leading 1 broadcasts against any batch.
    """

    logits: Tensor
    means: Tensor
    diag: Tensor
    factor: Tensor

    @property
    def rank(self) -> int:
        return self.factor.shape[-1]

    def capacitance_cholesky(self, scaled_factor: Tensor) -> Tensor:
        """Cholesky factor of ``C = I_r + W^T W`` (``W = D^{-1/2} U``); ``C >= I``, so it is safe."""
        eye = torch.eye(self.rank, dtype=scaled_factor.dtype, device=scaled_factor.device)
        return torch.linalg.cholesky(eye + scaled_factor.transpose(-1, -2) @ scaled_factor)

    def component_log_prob(self, z: Tensor) -> Tensor:
        """``log N_k(z)`` of shape (N, K) for ``z`` of shape (N, d), by the determinant lemma."""
        N, d = z.shape
        delta = z.unsqueeze(-2) - self.means  # (N, K, d)
        quad = (self.diag * delta.square()).sum(-1)
        log_det = self.diag.log().sum(-1)
        r = self.rank
        if 1 <= r <= 3 and self.diag.shape[0] == N > 1:
            # per-row D (and U): closed forms, see LowRankTerms
            shape = (*delta.shape, r)
            lr_quad, lr_log_det = LowRankTerms.apply(delta, self.diag.expand_as(delta), self.factor.expand(shape))
            quad, log_det = quad + lr_quad, log_det + lr_log_det
        elif r:
            # U_k^T delta (N, K, r); a shared factor makes it K matmuls instead of N * K tiny ones.
            if self.factor.shape[0] == 1:
                proj = torch.einsum("nkd,kdr->nkr", delta, self.factor[0])
            else:
                proj = torch.einsum("nkd,nkdr->nkr", delta, self.factor)
            quad = quad + proj.square().sum(-1)
            chol = self.capacitance_cholesky(self.factor * self.diag.rsqrt().unsqueeze(-1))
            log_det = log_det + 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return 0.5 * (log_det - quad - d * LOG_2PI)

    def log_prob(self, z: Tensor) -> Tensor:
        """``log sum_k alpha_k N_k(z)`` of shape (N,)."""
        log_alpha = F.log_softmax(self.logits, dim=-1)
        return torch.logsumexp(log_alpha + self.component_log_prob(z), dim=-1)

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` exact draws (N, d) (see the module docstring); ``temperature`` scales the spread."""
        K, d = self.means.shape[-2:]
        logits = self.logits.expand(n, K)
        if temperature == 0:
            k = logits.argmax(dim=-1)
        else:
            k = torch.multinomial(F.softmax(logits, dim=-1), 1).squeeze(-1)
        rows = torch.arange(n, device=k.device)
        mean = self.means.expand(n, K, d)[rows, k]
        if temperature == 0:
            return mean
        inv_sqrt_diag = self.diag.expand(n, K, d)[rows, k].rsqrt()
        a = torch.randn_like(mean)
        if self.rank:
            w = self.factor.expand(n, K, d, self.rank)[rows, k] * inv_sqrt_diag.unsqueeze(-1)
            a = a + (w @ torch.randn_like(mean[:, : self.rank]).unsqueeze(-1)).squeeze(-1)
            c = torch.cholesky_solve(w.transpose(-1, -2) @ a.unsqueeze(-1), self.capacitance_cholesky(w))
            a = a - (w @ c).squeeze(-1)
        return mean + temperature * inv_sqrt_diag * a



def ldl_pivots(gram: dict) -> tuple[list, dict]:
    """``C = I + G = L diag(p) L^T`` for ``G`` given by its entries ``gram[i, j]`` (``i >= j``),
    each a tensor: the Cholesky recurrence written out (Golub & Van Loan, Matrix Computations,
    4th ed., section 4.1.2), so ``log det C = sum_j log p_j``. Each pivot is a Schur complement of
    ``C >= I``, hence ``>= 1``. Returns the pivots and the strictly lower entries ``L[i, j]``."""
    r = max(i for i, _ in gram) + 1
    pivots, low = [], {}
    for j in range(r):
        pivots.append(1 + gram[j, j] - sum(low[j, m].square() * pivots[m] for m in range(j)))
        for i in range(j + 1, r):
            low[i, j] = (gram[i, j] - sum(low[i, m] * low[j, m] * pivots[m] for m in range(j))) / pivots[j]
    return pivots, low


def ldl_inverse(pivots: list, low: dict) -> dict:
    """Entries ``(i, j)``, ``i >= j``, of ``C^{-1} = L^{-T} diag(p)^{-1} L^{-1}`` (``L`` unit lower)."""
    r = len(pivots)
    inv_low = {(i, i): 1.0 for i in range(r)}  # L^{-1}, by forward substitution
    for i in range(r):
        for j in range(i):
            inv_low[i, j] = -sum(low[i, m] * inv_low[m, j] for m in range(j, i))
    return {(i, j): sum(inv_low[m, i] * inv_low[m, j] / pivots[m] for m in range(i, r))
            for i in range(r) for j in range(i + 1)}


class LowRankTerms(torch.autograd.Function):
    """``(||U^T delta||^2, log det(I_r + U^T D^{-1} U))`` of shape (N, K) for per-row ``delta, D``
    of shape (N, K, d) and ``U`` (N, K, d, r), ``r <= 3``, with a hand-written backward.

    Everything is elementwise over (N, K, d) and reduced over ``d``: ``p = U^T delta`` (``r`` dot
    products), ``G = U^T D^{-1} U`` (``r (r + 1) / 2``), ``log det C`` from the pivots of
    :func:`ldl_pivots`. ``N * K`` tiny matmuls and batched ``r x r`` Cholesky factors (and their
    autograd graphs) cost 5-10x more on a CPU. The gradients, with ``V = D^{-1} U`` and
    ``C = I + G`` (``d log det C = tr(C^{-1} dC)``):

        d||p||^2/d delta = 2 U p,   d||p||^2/dU = 2 delta p^T,
        d log det C/dU = 2 V C^{-1},   d log det C/dD = -diag(V C^{-1} V^T).
    """

    @staticmethod
    def forward(ctx, delta: Tensor, diag: Tensor, factor: Tensor) -> tuple[Tensor, Tensor]:
        u = factor.unbind(-1)
        inv = diag.reciprocal()
        v = [c * inv for c in u]
        proj = [(delta * c).sum(-1) for c in u]
        pivots, low = ldl_pivots({(i, j): (v[i] * u[j]).sum(-1) for i in range(len(u)) for j in range(i + 1)})
        c_inv = ldl_inverse(pivots, low)
        ctx.save_for_backward(delta, inv, factor, torch.stack(proj), torch.stack(list(c_inv.values())))
        return sum(p.square() for p in proj), sum(p.log() for p in pivots)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_quad: Tensor, g_log_det: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        delta, inv, factor, proj, c_inv = ctx.saved_tensors
        u = factor.unbind(-1)
        r = len(u)
        v = [c * inv for c in u]
        keys = [(i, j) for i in range(r) for j in range(i + 1)]
        c_inv = dict(zip(keys, (2 * g_log_det * c_inv).unsqueeze(-1).unbind(0), strict=True))  # 2 g C^{-1}
        s = (2 * g_quad * proj).unsqueeze(-1)  # (r, N, K, 1)
        g_delta = sum(s[a] * u[a] for a in range(r))
        t = [sum(c_inv[max(a, b), min(a, b)] * v[b] for b in range(r)) for a in range(r)]  # 2 g V C^{-1}
        g_factor = torch.stack([torch.addcmul(t[a], s[a], delta) for a in range(r)], -1)
        g_diag = -0.5 * sum(v[a] * t[a] for a in range(r))
        return g_delta, g_diag, g_factor


class GMMLowRankConfig(HeadConfig):
    """Config of :class:`GMMLowRankPrecision`."""

    components: int = Field(default=10, ge=1, description="number of mixture components K")
    rank: int = Field(default=0, ge=0, description="columns r of each U_k (0: diagonal precision)")
    u_from_context: bool = Field(
        default=True,
        description="U_k produced by the head (FRMDN's better case); False: free U_k shared by all contexts",
    )
    positivity: Literal["softplus", "exp"] = "softplus"
    min_precision: float = Field(default=1e-4, ge=0.0, lt=1.0, description="floor added to D")
    clamp: tuple[float, float] | None = Field(
        default=None, description="clip D to [lo, hi] as in frmdn.txt section 5.1, e.g. [0.1, 1.9]"
    )

    @model_validator(mode="after")
    def _check_clamp(self) -> GMMLowRankConfig:
        if self.clamp is not None and not 0 < self.clamp[0] < self.clamp[1]:
            raise ValueError(f"clamp must be [lo, hi] with 0 < lo < hi, got {list(self.clamp)}")
        return self


@register(
    "priors", "gmm_lowrank", version=1, config=GMMLowRankConfig,
    summary="Gaussian mixture with precisions D_k + U_k U_k^T (FRMDN eqs. 10-13), free or from a context.",
    examples=[
        {"config": {"components": 3, "rank": 1}, "shape": (2,), "context_shape": None},
        {"config": {"components": 2, "rank": 0}, "shape": (1,), "context_shape": None},
        {"config": {"components": 2, "rank": 2, "positivity": "exp"}, "shape": (2, 2), "context_shape": None},
        {"config": {"components": 3, "rank": 2}, "shape": (2,), "context_shape": (4,)},
        {"config": {"components": 2, "rank": 1, "u_from_context": False, "clamp": (0.1, 1.9)},
         "shape": (3,), "context_shape": (2, 2)},
    ],
)
class GMMLowRankPrecision(Prior):
    """Mixture of ``K`` Gaussians with precision ``D_k + U_k U_k^T`` over the flattened event.

    Unconditional (``context_shape=None``): all parameters are free (``mu_k ~ N(0, I)`` at
    initialisation to break the symmetry between components, ``D_k = 1``, ``U_k`` random).
    Conditional: the head maps each context row (for FRMDN, the LSTM output ``h_t`` of shape
    ``(H,)``) to ``K + 2 K d (+ K d r)`` raw parameters. ``z`` is ``(*batch, *shape)`` and the
    context ``(*batch, *context_shape)``, so ``(B*T, d)`` with ``(B*T, H)`` and ``(B, T, d)`` with
    ``(B, T, H)`` both work; ``log_prob`` returns ``batch``.

    Example::

        >>> import torch
        >>> prior = GMMLowRankPrecision(components=10, rank=3, shape=(28,), context_shape=(32,))
        >>> z, h = torch.randn(5, 7, 28), torch.randn(5, 7, 32)
        >>> prior.log_prob(z, h).shape
        torch.Size([5, 7])
        >>> prior.sample(context=h, temperature=0.8).shape
        torch.Size([5, 7, 28])
        >>> prior.distribution(h).batch_shape, prior.distribution(h).event_shape
        (torch.Size([5, 7]), torch.Size([28]))
    """

    def __init__(
        self,
        components: int = 10,
        rank: int = 0,
        head=None,
        u_from_context: bool = True,
        positivity: str = "softplus",
        min_precision: float = 1e-4,
        clamp: tuple[float, float] | None = None,
        *,
        shape: tuple[int, ...],
        context_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(shape, context_shape)
        check_head_use("GMMLowRankPrecision", head, self.context_shape)
        self.components, self.rank = int(components), int(rank)
        self.dim = math.prod(self.shape)
        self.positivity, self.min_precision, self.clamp = positivity, float(min_precision), clamp
        K, d, r = self.components, self.dim, self.rank
        self.free_factor = self.context_shape is None or not u_from_context
        if self.context_shape is None:
            self.logits = nn.Parameter(torch.zeros(1, K))
            self.means = nn.Parameter(torch.randn(1, K, d))
            self.raw_diag = nn.Parameter(torch.zeros(1, K, d))
            self.head = None
        else:
            self.splits = [K, K * d, K * d] + ([] if self.free_factor else [K * d * r])
            self.head = ContextHead(self.context_shape, (sum(self.splits),), head, "GMMLowRankPrecision")
        if self.free_factor:
            self.raw_factor = nn.Parameter(torch.randn(1, K, d, r))

    def _diag(self, raw: Tensor) -> Tensor:
        floor = self.min_precision
        if self.positivity == "softplus":
            diag = floor + F.softplus(raw + math.log(math.expm1(1.0 - floor)))
        else:
            diag = floor + (1.0 - floor) * torch.exp(raw)
        return diag if self.clamp is None else diag.clamp(*self.clamp)

    def mixture(self, context: Tensor | None = None) -> LowRankPrecisionMixture:
        """The mixture's parameters: leading axis 1 (unconditional) or the flattened context batch."""
        if self.head is None:
            logits, means, raw_diag = self.logits, self.means, self.raw_diag
        else:
            out = self.head(context.reshape(-1, *self.context_shape))
            parts = out.split(self.splits, dim=-1)
            logits = parts[0]
            means, raw_diag = (rearrange(p, "n (k d) -> n k d", k=self.components) for p in parts[1:3])
        if self.free_factor:
            raw_factor = self.raw_factor
        else:
            raw_factor = rearrange(parts[3], "n (k d r) -> n k d r", k=self.components, d=self.dim)
        return LowRankPrecisionMixture(
            logits, means, self._diag(raw_diag), raw_factor / math.sqrt(self.dim)
        )

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        batch = batch_shape(self, z)
        check_context(self, context, batch)
        return self.mixture(context).log_prob(z.reshape(-1, self.dim)).reshape(batch)

    def sample(self, n: int | None = None, context: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        batch = sample_batch(self, n, context)
        t = check_temperature(self, temperature)
        return self.mixture(context).sample(batch.numel(), t).reshape(*batch, *self.shape)

    def distribution(self, context: Tensor | None = None) -> Distribution:
        """``p(z | context)`` as ``MixtureSameFamily(Categorical(alpha), MultivariateNormal(mu_k,
        precision_matrix=D_k + U_k U_k^T))`` (reshaped to event shape :attr:`shape` when it has
        more than one axis); batch shape the context's batch axes (``()`` without a context);
        temperature 1.

        The precisions are formed densely: ``O(K d^2)`` memory per row and an ``O(K d^3)``
        Cholesky factorisation, against ``O(K d r)`` for :meth:`log_prob`, so it is meant for
        small ``d`` and for Monte Carlo estimates (a mixture has no closed-form KL divergence;
        ``torch.distributions.kl_divergence`` raises ``NotImplementedError`` for it). Training
        and scoring use :meth:`log_prob` and :meth:`mixture`.
        """
        batch = check_context(self, context, None) or torch.Size()
        m = self.mixture(context)
        precision = torch.diag_embed(m.diag) + m.factor @ m.factor.transpose(-1, -2)  # (N or 1, K, d, d)
        K, d = self.components, self.dim
        lead = (batch.numel(),)
        mixture = MixtureSameFamily(
            Categorical(logits=m.logits.expand(*lead, K).reshape(*batch, K)),
            MultivariateNormal(
                m.means.expand(*lead, K, d).reshape(*batch, K, d),
                precision_matrix=precision.expand(*lead, K, d, d).reshape(*batch, K, d, d),
            ),
        )
        if len(self.shape) == 1:
            return mixture
        return TransformedDistribution(mixture, [ReshapeTransform((d,), self.shape)])
