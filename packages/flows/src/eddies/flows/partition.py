"""How a coupling layer splits its input into a conditioning part and a transformed part.

References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017,
arXiv:1605.08803; Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
NeurIPS 2018, arXiv:1807.03039; Lu & Huang, "Structured Output Learning with Conditional Generative
Flows", AAAI 2020, arXiv:1905.13288 (cglow.txt); Zand, Etemad & Greenspan, "Flow-based Spatio-
Temporal Structured Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391
(motionflow.txt); Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network",
2020, arXiv:2008.02144 (frmdn.txt).

- ``"half"``: the first ``C // 2`` channels (images, Glow's ``split`` along channels, cglow.txt
  section 3.3) or features (vectors, RealNVP's ``1:d'``, frmdn.txt section 3.2) condition the rest;
- ``"alternate"``: even channels/features condition the odd ones (MotionFlow's ``cross``,
  motionflow.txt eq. 7; RealNVP's alternating vector masks);
- ``"checkerboard"``: RealNVP's spatial checkerboard mask ``b`` over ``(H, W)`` (images only);
  the conditioning part is ``b * x`` at full shape, and the transformed part is the whole of
  ``x`` with its parameters masked by ``1 - b``.

``flip=True`` swaps the roles, so stacking layers with alternating ``flip`` transforms every
entry. Example::

    >>> import torch
    >>> p = Partition((4,), "alternate", flip=False)
    >>> a, b = p.split(torch.arange(4.0)[None])
    >>> a.tolist(), b.tolist(), p.merge(a, b).tolist()
    ([[0.0, 2.0]], [[1.0, 3.0]], [[0.0, 1.0, 2.0, 3.0]])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from eddies.core import ShapeError

MaskName = Literal["half", "alternate", "checkerboard"]


class Partition(nn.Module):
    """Split and merge along axis 1 (or by a checkerboard mask); see the module docstring."""

    def __init__(self, shape: tuple[int, ...], mask: str, flip: bool, owner: str = "coupling"):
        super().__init__()
        self.shape = tuple(shape)
        channels = self.shape[0]
        if mask == "checkerboard":
            if len(self.shape) != 3:
                raise ShapeError(f"{owner}: the checkerboard mask needs (C, H, W) inputs, got {self.shape}")
            h, w = self.shape[1:]
            grid = (torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2
            self.register_buffer("mask", (grid == int(flip)).to(torch.get_default_dtype())[None], persistent=False)
            self.cond_shape = self.trans_shape = self.shape
            return
        if channels < 2:
            raise ShapeError(f"{owner}: a {mask!r} split needs at least 2 channels/features, got {self.shape}")
        index = torch.arange(channels)
        cond, trans = (index[: channels // 2], index[channels // 2 :]) if mask == "half" else (
            index[0::2], index[1::2])
        if flip:
            cond, trans = trans, cond
        self.mask = None
        self.contiguous = mask == "half" and not flip
        self.register_buffer("cond_index", cond, persistent=False)
        self.register_buffer("trans_index", trans, persistent=False)
        self.register_buffer("merge_index", torch.argsort(torch.cat([cond, trans])), persistent=False)
        self.cond_shape = (len(cond), *self.shape[1:])
        self.trans_shape = (len(trans), *self.shape[1:])

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(conditioning part, part to transform)``."""
        if self.mask is not None:
            return x * self.mask, x
        if self.contiguous:
            return x[:, : self.cond_shape[0]], x[:, self.cond_shape[0] :]
        return x.index_select(1, self.cond_index), x.index_select(1, self.trans_index)

    def merge(self, cond: Tensor, trans: Tensor) -> Tensor:
        """Inverse of :meth:`split` (for the checkerboard, ``trans`` already holds everything)."""
        if self.mask is not None:
            return trans
        out = torch.cat([cond, trans], dim=1)
        return out if self.contiguous else out.index_select(1, self.merge_index)

    def restrict(self, t: Tensor) -> Tensor:
        """Zero a full-shape parameter map on the conditioning part (checkerboard only)."""
        return t if self.mask is None else t * (1 - self.mask)
