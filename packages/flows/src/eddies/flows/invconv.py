"""Invertible 1x1 convolution: ``invconv1x1`` (Glow) and ``cond_invconv1x1`` (c-Glow, MotionFlow).

References: Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions", NeurIPS
2018, arXiv:1807.03039; Lu & Huang, "Structured Output Learning with Conditional Generative Flows",
AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal
Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (motionflow.txt).

cglow.txt section 3.3 and motionflow.txt eq. 6: ``u_{i,j} = W v_{i,j}`` with a ``C x C`` matrix
``W`` applied at every position, ``log|det| = H · W · log|det W|``. With ``lu=True`` (default)
``W`` is parameterised by its LU decomposition (Glow, section 3.2)::

    W = P · L · (U + diag(sign(s) · exp(log|s|)))

with a fixed permutation ``P``, unit-lower ``L``, strictly-upper ``U`` and fixed signs, so
``log|det W| = Σ log|s|`` costs O(C) and the inverse uses two triangular solves (accurate in
float32). ``lu=False`` is the plain variant: ``W`` free, ``log|det W|`` from ``slogdet``
(O(C³)). Both start from a random rotation. Works on images ``(C, H, W)`` and vectors ``(D,)``.

``cond_invconv1x1``: c-Glow predicts the whole matrix, ``W = CN(x)`` (cglow.txt section 4.1,
"Conditional 1x1 convolutional"; its network outputs ``d = c²`` values, appendix A.1), and takes
``log|det W|`` by ``slogdet`` - nothing keeps that ``W`` invertible. Here the conditioner
predicts the same number of values, ``c²``, but as offsets to the LU factors of a learned base
matrix: ``C(C-1)/2`` strictly-lower entries of ``L``, as many strictly-upper entries of ``U``
and ``C`` log-magnitudes of the diagonal. Every predicted ``W`` is then invertible, its
log-det is O(C) and its inverse is two triangular solves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from eddies.core import Bijection, ComponentConfig, ShapeError, Spec, SpecOf, register
from eddies.flows._util import build_net, default_context_net, identity_start, pixels


def apply_matrix(w: Tensor, x: Tensor) -> Tensor:
    """``W x`` at every position of ``x`` (B, C, *spatial); ``w`` is (C, C) or per sample (B, C, C)."""
    if w.dim() == 2:
        if x.dim() == 2:
            return F.linear(x, w)
        if x.dim() == 4:
            return F.conv2d(x, w[:, :, None, None])
        return torch.einsum("ij,bj...->bi...", w, x)
    return torch.einsum("bij,bj...->bi...", w, x)


def random_rotation(channels: int) -> Tensor:
    """A random orthogonal matrix (QR of a Gaussian matrix, as Glow's initialisation)."""
    q, _ = torch.linalg.qr(torch.randn(channels, channels))
    return q


class LUFactors(nn.Module):
    """``W = P L (U + diag(sign · exp(log_s)))`` from a random rotation; buffers ``P`` and ``sign``."""

    def __init__(self, channels: int):
        super().__init__()
        lu, pivots = torch.linalg.lu_factor(random_rotation(channels))
        p, lower, upper = torch.lu_unpack(lu, pivots)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(diag))
        self.lower = nn.Parameter(torch.tril(lower, -1))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def factors(self, d_lower=None, d_upper=None, d_log_s=None) -> tuple[Tensor, Tensor, Tensor]:
        """``(L, U', log|s|)`` with optional per-sample offsets (B, C, C), (B, C, C), (B, C)."""
        eye = torch.eye(self.sign.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower, upper, log_s = self.lower, self.upper, self.log_s
        if d_lower is not None:
            lower, upper, log_s = lower + d_lower, upper + d_upper, log_s + d_log_s
        lower = torch.tril(lower, -1) + eye
        upper = torch.triu(upper, 1) + torch.diag_embed(self.sign * torch.exp(log_s))
        return lower, upper, log_s

    def weight(self, lower: Tensor, upper: Tensor) -> Tensor:
        return self.perm @ lower @ upper

    def inverse_weight(self, lower: Tensor, upper: Tensor) -> Tensor:
        """``W⁻¹ = U'⁻¹ L⁻¹ Pᵀ`` by triangular solves."""
        eye = torch.eye(lower.shape[-1], dtype=lower.dtype, device=lower.device).expand_as(lower)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        upper_inv = torch.linalg.solve_triangular(upper, eye, upper=True)
        return upper_inv @ lower_inv @ self.perm.T


class InvConv1x1Config(ComponentConfig):
    """Config of ``invconv1x1``."""

    lu: bool = Field(True, description="LU parameterisation (O(C) log-det); False: plain W with slogdet")


@register(
    "flows", "invconv1x1", version=1, config=InvConv1x1Config,
    summary="Invertible 1x1 convolution (Glow), LU-parameterised or plain; images and vectors.",
    examples=[{"config": {}, "shape": (3, 2, 2), "context_shape": None},
              {"config": {"lu": False}, "shape": (3, 2, 1), "context_shape": None},
              {"config": {}, "shape": (4,), "context_shape": None},
              {"config": {"lu": False}, "shape": (3,), "context_shape": None}],
)
class InvConv1x1(Bijection):
    """``z_{i,j} = W x_{i,j}`` (cglow.txt section 3.3; motionflow.txt eq. 6); see the module doc.

    Example::

        >>> import torch
        >>> layer = InvConv1x1(shape=(4, 3, 3))
        >>> x = torch.randn(2, 4, 3, 3)
        >>> z, logdet = layer(x)
        >>> torch.allclose(layer.inverse(z)[0], x, atol=1e-5), logdet.shape
        (True, torch.Size([2]))
    """

    def __init__(self, lu: bool = True, *, shape: tuple[int, ...], context_shape=None):
        super().__init__(shape)
        channels = self.shape[0]
        self.lu = LUFactors(channels) if lu else None
        self.weight = None if lu else nn.Parameter(random_rotation(channels))

    def _weight_logdet(self) -> tuple[Tensor, Tensor]:
        if self.lu is None:
            return self.weight, torch.linalg.slogdet(self.weight).logabsdet
        lower, upper, log_s = self.lu.factors()
        return self.lu.weight(lower, upper), log_s.sum()

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        w, logdet = self._weight_logdet()
        return apply_matrix(w, x), (logdet * pixels(self.shape)).expand(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        if self.lu is None:
            w_inv, logdet = torch.linalg.inv(self.weight), torch.linalg.slogdet(self.weight).logabsdet
        else:
            lower, upper, log_s = self.lu.factors()
            w_inv, logdet = self.lu.inverse_weight(lower, upper), log_s.sum()
        return apply_matrix(w_inv, z), (-logdet * pixels(self.shape)).expand(z.shape[0])


class CondInvConv1x1Config(ComponentConfig):
    """Config of ``cond_invconv1x1``."""

    net: SpecOf("conditioners") | None = Field(
        None, description="CN(context) -> (C²,): offsets of L's and U's off-diagonal entries and of "
        "log|s|; default: a zero-started mlp (vector context) or cglow_vector (image context)")
    identity_init: bool = Field(True, description="set zero_init_last on conditioners that offer it")


@register(
    "flows", "cond_invconv1x1", version=1, config=CondInvConv1x1Config,
    summary="c-Glow's conditional 1x1 convolution W = CN(x), predicted as LU factors (always invertible).",
    examples=[{"config": {"net": {"type": "mlp", "hidden": [5], "activation": "tanh"}}, "shape": (3, 2, 2), "context_shape": (2,)},
              {"config": {"net": {"type": "mlp", "hidden": [5], "activation": "tanh"}}, "shape": (3,), "context_shape": (4,)},
              {"config": {"net": {"type": "cglow_vector", "channels": 3, "width": 8, "activation": "tanh"}}, "shape": (2, 2, 2),
               "context_shape": (1, 4, 4)}],
)
class CondInvConv1x1(Bijection):
    """``W = CN(x)`` as LU factors (cglow.txt section 4.1; motionflow.txt eq. 6); see the module doc.

    Example::

        >>> import torch
        >>> layer = CondInvConv1x1(shape=(3, 2, 2), context_shape=(5,))
        >>> x, c = torch.randn(4, 3, 2, 2), torch.randn(4, 5)
        >>> z, logdet = layer(x, c)
        >>> torch.allclose(layer.inverse(z, c)[0], x, atol=1e-5)
        True
    """

    def __init__(self, net: Spec | None = None, identity_init: bool = True, *, shape: tuple[int, ...],
                 context_shape=None):
        if context_shape is None:
            raise ShapeError("cond_invconv1x1 is conditional: it needs a context_shape, got None")
        super().__init__(shape, context_shape)
        channels = self.shape[0]
        net = net if net is not None else default_context_net(self.context_shape)
        self.lu = LUFactors(channels)
        self.net = build_net(identity_start(net, identity_init), self.context_shape, (channels * channels,), self)
        rows, cols = torch.tril_indices(channels, channels, -1)
        self.register_buffer("lower_index", rows * channels + cols, persistent=False)
        self.register_buffer("upper_index", cols * channels + rows, persistent=False)

    def _factors(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = self.shape[0]
        n = c * (c - 1) // 2
        out = self.net(context)
        flat = out.new_zeros(out.shape[0], c * c)
        d_lower = flat.index_copy(1, self.lower_index, out[:, :n]).view(-1, c, c)
        d_upper = flat.index_copy(1, self.upper_index, out[:, n : 2 * n]).view(-1, c, c)
        return self.lu.factors(d_lower, d_upper, out[:, 2 * n :])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(x, self.shape)
        self.check_context(context, x.shape[0])
        lower, upper, log_s = self._factors(context)
        return apply_matrix(self.lu.weight(lower, upper), x), log_s.sum(dim=1) * pixels(self.shape)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.check(z, self.shape)
        self.check_context(context, z.shape[0])
        lower, upper, log_s = self._factors(context)
        return apply_matrix(self.lu.inverse_weight(lower, upper), z), -log_s.sum(dim=1) * pixels(self.shape)
