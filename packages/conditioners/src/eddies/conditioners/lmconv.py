"""Locally masked convolution (``lmconv``; motionflow.txt sec. 3.2, 4.3).

Ajay Jain, Pieter Abbeel & Deepak Pathak, "Locally Masked Convolution for Autoregressive
Models", UAI 2020, arXiv:2006.12486; used by MotionFlow (Zand, Etemad & Greenspan, IEEE TPAMI
2023, arXiv:2104.04391; local copy motionflow.txt).

A convolution whose kernel is masked differently at every output location so that output
position ``i`` only sees input positions earlier in a generation ordering (see
:mod:`eddies.conditioners.orderings`)::

    y[o, i] = b[o] + sum_{c, j in N_d(i)} W[o, c, j - i] * M[j, i] * x[c, j]

with ``N_d(i)`` the ``k x k`` neighbourhood of ``i`` at dilation ``d`` and
``M[j, i] = [rank(j) < rank(i)]`` (mask type ``A``) or ``[rank(j) <= rank(i)]`` (type ``B``).
Stacking one type-``A`` layer and any number of type-``B`` layers keeps every output strictly
after the inputs it depends on.

Two exact evaluations, chosen by ``backend``:

- ``gather`` (any ordering): the masked im2col in one gather. The input, channels last and
  with one extra zero row, is indexed by a precomputed ``(H * W * k * k)`` index that points
  every (location, tap) pair at its input position, or at the zero row when the mask or the
  image border excludes it; one matmul with the weights follows. This is the standard
  "unfold, mask, matmul" with the unfolding and the masking fused (and its backward a single
  ``index_add``).
- ``patterns``: most positions share one of a few masks (raster and column orders have a
  single interior mask). For the ``P`` distinct masks, one convolution with the ``P`` masked
  kernels stacked as ``P * O`` output channels, then a gather of each position's own
  ``O`` channels. Exact as well, because entries of a mask that fall outside the image read the
  zero padding, so a border position can share any mask that agrees with it inside the image.
  ``auto`` uses ``patterns`` when ``P <= max_patterns``, else ``gather``.

The masks are non-persistent buffers computed once per (ordering, size, kernel, dilation,
type) and cached.

Example::

    >>> import torch
    >>> conv = LMConv(in_shape=(2, 4, 4), out_shape=(3, 4, 4), ordering="s_curve", mask_type="A")
    >>> x = torch.randn(1, 2, 4, 4, requires_grad=True)
    >>> conv(x)[0, :, 1, 3].sum().backward()         # position (1, 3) is step 4 of the S-curve
    >>> (x.grad[0].abs().sum(0) > 0).int().tolist()  # it sees steps 2 and 3 only
    [[0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from pydantic import Field, field_validator
from torch import Tensor, nn

from eddies.conditioners.orderings import Ordering, ordering_ranks
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.shapes import batch_axes

MaskType = Literal["A", "B"]


class LMConvMasks(NamedTuple):
    """Masks of one layer: as a gather index, and grouped into distinct patterns."""

    gather_index: Tensor  # (H*W*k*k,), input position of each (location, tap), H*W if masked
    patterns: Tensor  # (P, k*k), the distinct masks (entries outside the image free)
    pattern_index: Tensor  # (H*W,), which pattern each location uses


@functools.lru_cache(maxsize=256)
def lmconv_masks(
    ordering: tuple[str, bool, bool, bool], h: int, w: int, kernel_size: int, dilation: int,
    mask_type: str,
) -> LMConvMasks:
    """The masks of an LMConv layer (``ordering`` is :meth:`Ordering.key`); cached."""
    curve, transpose, flip_rows, flip_cols = ordering
    ranks = ordering_ranks(
        Ordering(curve=curve, transpose=transpose, flip_rows=flip_rows, flip_cols=flip_cols), h, w
    )
    pad = dilation * (kernel_size // 2)

    def neighbourhoods(grid: Tensor) -> Tensor:  # (k*k, H*W) values of each location's window
        padded = F.pad(grid.double()[None, None], (pad,) * 4, value=-1.0)
        return F.unfold(padded, kernel_size, dilation=dilation)[0].long()

    neighbours = neighbourhoods(ranks)
    positions = neighbourhoods(torch.arange(h * w).view(h, w))
    centre = ranks.reshape(1, -1)
    inside = neighbours >= 0
    earlier = neighbours < centre if mask_type == "A" else neighbours <= centre
    mask = inside & earlier
    gather_index = torch.where(mask, positions, h * w).T.reshape(-1)
    patterns, index = _group_patterns(mask, inside)
    return LMConvMasks(gather_index, patterns.float(), index)


def _group_patterns(mask: Tensor, inside: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct masks: interior locations first, border ones join any mask agreeing inside."""
    interior = inside.all(dim=0)
    index = torch.empty(mask.shape[1], dtype=torch.long)
    if interior.any():
        patterns, inverse = torch.unique(mask[:, interior].T, dim=0, return_inverse=True)
        index[interior] = inverse
    else:
        patterns = mask.new_zeros(0, mask.shape[0])
    for loc in (~interior).nonzero().flatten().tolist():
        col, ins = mask[:, loc], inside[:, loc]
        fits = ((patterns == col) | ~ins).all(dim=1).nonzero()
        if len(fits):
            index[loc] = fits[0, 0]
        else:
            index[loc] = len(patterns)
            patterns = torch.cat([patterns, col[None]])
    return patterns, index


class LMConvConfig(ComponentConfig):
    """Config of :class:`LMConv`."""

    ordering: Ordering = Field(default_factory=Ordering, description="curve name or {curve, ...}")
    kernel_size: int = Field(default=3, ge=1)
    dilation: int = Field(default=1, ge=1)
    mask_type: MaskType = Field(default="B", description="A: strictly earlier; B: also itself")
    bias: bool = True
    backend: Literal["auto", "gather", "patterns"] = "auto"
    max_patterns: int = Field(default=2, ge=1, description="auto: patterns backend up to this many")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred kernels), got {k}")
        return k


@register(
    "conditioners", "lmconv", version=1, config=LMConvConfig,
    summary="Locally masked convolution: per-location masks from a generation ordering (LMConv).",
    examples=[  # "autoregressive": the conformance kit checks the Jacobian against the ordering
        {"config": {"ordering": "hilbert", "mask_type": "A"}, "in_shape": (2, 4, 4),
         "out_shape": (3, 4, 4), "batch": (2,),
         "autoregressive": {"ranks": ordering_ranks(Ordering(curve="hilbert"), 4, 4).tolist(), "strict": True}},
        {"config": {"ordering": {"curve": "s_curve", "transpose": True}, "dilation": 2,
                    "backend": "gather"},
         "in_shape": (1, 5, 3), "out_shape": None, "batch": (2, 2),
         "autoregressive": {"ranks": ordering_ranks(Ordering(curve="s_curve", transpose=True), 5, 3).tolist(),
                            "strict": False}},
    ],
)
class LMConv(Conditioner):
    """Locally masked 2-d convolution; see the module docstring for the equation and example.

    ``in_shape=(C, H, W)``; ``out_shape=(C', H, W)`` (default ``C`` channels); resolution kept.
    """

    def __init__(
        self,
        ordering: Ordering | str | dict = "raster",
        kernel_size: int = 3,
        dilation: int = 1,
        mask_type: str = "B",
        bias: bool = True,
        backend: str = "auto",
        max_patterns: int = 2,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"LMConv: in_shape must be (C, H, W), got {self.in_shape}")
        c, h, w = self.in_shape
        self._out = self.requested_out_shape or self.in_shape
        if len(self._out) != 3 or self._out[1:] != (h, w):
            raise ShapeError(f"LMConv keeps the resolution: out_shape must be (C', {h}, {w}), got {self._out}")
        self.ordering = Ordering.model_validate(ordering)
        self.kernel_size, self.dilation, self.mask_type = kernel_size, dilation, mask_type
        self.padding = dilation * (kernel_size // 2)
        # nn.Conv2d only for its parameters and their standard initialisation
        conv = nn.Conv2d(c, self._out[0], kernel_size, bias=bias)
        self.weight, self.bias = conv.weight, conv.bias
        masks = lmconv_masks(self.ordering.key(), h, w, kernel_size, dilation, mask_type)
        self.register_buffer("gather_index", masks.gather_index, persistent=False)
        self.register_buffer("patterns", masks.patterns, persistent=False)
        self.register_buffer("pattern_index", masks.pattern_index, persistent=False)
        if backend == "auto":
            backend = "patterns" if len(masks.patterns) <= max_patterns else "gather"
        self.backend = backend

    def output_shape(self) -> tuple[int, ...]:
        return self._out

    def extra_repr(self) -> str:
        return (f"in_shape={self.in_shape}, out_shape={self._out}, ordering={self.ordering.key()}, "
                f"kernel_size={self.kernel_size}, dilation={self.dilation}, mask_type={self.mask_type}, "
                f"backend={self.backend}, patterns={len(self.patterns)}")

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        flat, packed = pack([x], "* c h w")
        y = self._gather(flat) if self.backend == "gather" else self._patterns(flat)
        return unpack(y.reshape(-1, *self._out), packed, "* c h w")[0]

    def _gather(self, x: Tensor) -> Tensor:
        rows = F.pad(rearrange(x, "b c h w -> b (h w) c"), (0, 0, 0, 1))  # + a zero row
        cols = rows.index_select(1, self.gather_index)  # (B, H*W*k*k, C), masked
        weight = rearrange(self.weight, "o c i j -> o (i j c)")
        y = F.linear(cols.view(-1, weight.shape[1]), weight, self.bias)
        return rearrange(y, "(b l) o -> b o l", b=x.shape[0])

    def _patterns(self, x: Tensor) -> Tensor:
        k, p, o = self.kernel_size, len(self.patterns), self._out[0]
        kernels = self.weight.unsqueeze(0) * self.patterns.view(p, 1, 1, k, k)
        bias = None if self.bias is None else self.bias.repeat(p)
        y = F.conv2d(x, kernels.flatten(0, 1), bias, padding=self.padding, dilation=self.dilation)
        y = y.flatten(2)  # (B, P*O, L)
        if p == 1:
            return y
        y = rearrange(y, "b (p o) l -> b p o l", p=p)
        index = self.pattern_index.view(1, 1, 1, -1).expand(y.shape[0], 1, o, -1)
        return y.gather(1, index).squeeze(1)
