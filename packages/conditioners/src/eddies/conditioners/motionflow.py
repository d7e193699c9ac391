"""MotionFlow's spatio-temporal conditioner (``motionflow_conditioner``; motionflow.txt sec. 4.3).

MotionFlow: Mohsen Zand, Ali Etemad & Michael Greenspan, "Flow-based Spatio-Temporal Structured
Prediction of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391 (local copy: motionflow.txt).
Its ARNs are stacks of locally masked convolutions (Jain, Abbeel & Pathak, UAI 2020,
arXiv:2006.12486) and eq. 5 uses positional normalisation (Li, Wu, Lim, Belongie & Weinberger,
NeurIPS 2019, arXiv:1907.04312).

Two autoregressive networks read the input sequence ``x``, an image of frames (rows) by joints
(columns) with the joint coordinates as channels (CMU mocap: ``(3, 25, 24)``). Each is a stack
of three locally masked 3x3 convolutions (table 1): a masked *initial* convolution (mask type
A: a position never sees itself) with 32 channels, an *undilated* one (type B) with 16, and a
*dilated* one (type B, dilation 2). ``ARN1`` and ``ARN2`` differ only in their orderings: by
default ``raster`` (frame after frame: the temporal order) and ``column_major`` (joint after
joint: the spatial order). Their outputs are merged by eq. 5::

    c1, c2 = split(ARN1(x) * ARN2(x))      # split in two along channels
    c1 = PONO(c1)                          # positional normalisation
    c3 = c1 * sigmoid(c2)
    u = x + c3

``u`` has the shape of ``x``; it feeds FC1 (conditional actnorm), FC2 (conditional 1x1
convolution) and CNN1 (affine coupling), which the conditional flow layers own (for example
``{"type": "mlp", "hidden": [64, 64]}`` on the flattened ``u`` for FC1 and FC2, table 1).

Decisions where the paper is silent or ambiguous, written down:

- "split(ARN1 ARN2)": ``merge="product"`` (default) reads the juxtaposition as the elementwise
  product (figure 3 lists a product node; the authors' code multiplies), so each ARN ends
  with ``2C`` channels; ``merge="concat"`` reads it as concatenation, so each ends with ``C``
  channels and ``c1 = ARN1(x)``, ``c2 = ARN2(x)``.
- The last ARN layer has ``2C`` (or ``C``) channels so that ``c3`` matches ``x`` in eq. 5
  (table 1's 4 channels are that number for its padded 3-channel input); ``2L`` (or ``L``)
  with the lift below.
- Hidden layers are followed by PONO and ELU, the feature normalisation and activation of
  LMConv's networks; the last layer is linear (eq. 5 normalises and gates it).
- ``masked: false`` builds both ARNs from plain convolutions of the same sizes ("same" padding),
  the ablation of table 7 without masked convolutions ("A"); the orderings are then unused.
- ``ones_channel`` appends a constant channel to ``x`` before the first layer, so zero padding
  is distinguishable from zero data (as in PixelCNN++ and LMConv).

Few channels (``C < 3``): the lift. PONO normalises ``c1`` across its channels, and with ``C``
channels that removes two of ``C`` numbers per position (the mean and the scale): with ``C = 1``
``PONO(c1)`` is identically 0, so ``u = x`` and no gradient reaches the ARNs; with ``C = 2`` it
is ``±1``, only the sign of ``c1[0] - c1[1]``. So when ``C < 3`` (``lift: auto``, or for any
``C`` with ``lift: always``) eq. 5 runs in ``L = lift_channels`` channels (default 4, the width
of ``c1`` in the authors' code, which pads its 3 coordinates with a ones channel to 4) and is
projected back::

    c1, c2 = split(ARN1(x) * ARN2(x))      # 2L channels each (concat: L each)
    c3 = P (PONO(c1) * sigmoid(c2))        # P: learned C x L matrix at every position (1x1)
    u = x + c3

- What is lifted is ``c1`` (the ARNs' last layer gets ``2L`` or ``L`` output channels), not
  ``x``: a learned 1x1 convolution on ``x`` before the first masked convolution would compose
  with it into one linear map of ``x`` (the masks are the same for every channel), adding
  parameters but no functions; the collapse happens only where PONO acts.
- ``u = x + c3`` keeps ``x``'s shape and its identity residual (eq. 5's fourth line); ``P``
  has no bias (the conditional layers' nets add their own). ``P`` is 1x1, so every position of
  ``u`` still depends on ``x`` only at that position (the residual) and at positions strictly
  earlier in ARN1's or ARN2's ordering.
- ``P`` starts (semi-)orthogonal, rows of norm 1 when ``C <= L``: each channel of ``c3`` then
  has the size of one gated PONO channel, as without the lift. Not zero: a zero ``P`` would
  give ``u = x`` and no gradient to the ARNs at the start, the collapse this lift removes.
- ``C >= 3`` with ``lift: auto`` is eq. 5 as before (same parameters, names and shapes: no
  ``projection``), so the recipes with 3 channels and their checkpoints are unchanged.

Example::

    >>> import torch
    >>> cond = MotionFlowConditioner(in_shape=(3, 25, 24))
    >>> cond(torch.randn(2, 3, 25, 24)).shape
    torch.Size([2, 3, 25, 24])
    >>> lifted = MotionFlowConditioner(in_shape=(1, 25, 24))      # C = 1: eq. 5 in 4 channels
    >>> lifted.arn1[-1].output_shape(), tuple(lifted.projection.shape), lifted(torch.randn(2, 1, 25, 24)).shape
    ((8, 25, 24), (1, 4), torch.Size([2, 1, 25, 24]))
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.conditioners.lmconv import LMConv
from eddies.conditioners.orderings import Ordering
from eddies.conditioners.pono import PONO, pono
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.shapes import batch_axes


def autoregressive_network(
    in_shape: tuple[int, int, int], out_channels: int, ordering: Ordering, channels: list[int],
    kernel_size: int, dilation: int, activation: str, dropout: float, masked: bool = True,
) -> nn.Sequential:
    """ARN of motionflow.txt sec. 4.3: masked initial conv (type A), undilated convs (type B),
    then a dilated conv (type B) to ``out_channels``; PONO and activation between them. With
    ``masked=False`` the same stack of plain (unmasked, "same"-padded) convolutions: table 7's
    ablation without masked convolutions."""
    c, h, w = in_shape
    widths = [c, *channels, out_channels]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == len(widths) - 2
        d = dilation if last else 1
        layers.append(LMConv(
            ordering=ordering, kernel_size=kernel_size, dilation=d,
            mask_type="A" if i == 0 else "B", in_shape=(a, h, w), out_shape=(b, h, w),
        ) if masked else nn.Conv2d(a, b, kernel_size, padding=d * (kernel_size // 2), dilation=d))
        if not last:
            layers += [PONO(in_shape=(b, h, w)), make_activation(activation)]
            if i == 0 and dropout:
                layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class MotionFlowConditionerConfig(ComponentConfig):
    """Config of :class:`MotionFlowConditioner` (defaults: motionflow.txt table 1)."""

    ordering1: Ordering = Field(default="raster", description="ARN1's ordering (temporal)")
    ordering2: Ordering = Field(default="column_major", description="ARN2's ordering (spatial)")
    channels: list[int] = Field(default=[32, 16], min_length=1,
                                description="initial and undilated convolutions' channels")
    kernel_size: int = Field(default=3, ge=1)
    dilation: int = Field(default=2, ge=1, description="of the last (dilated) convolution")
    activation: ActivationName = "elu"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="after the initial conv")
    merge: Literal["product", "concat"] = "product"
    ones_channel: bool = True
    eps: float = Field(default=1e-5, gt=0.0, description="PONO's epsilon in eq. 5")
    lift: Literal["auto", "always"] = Field(
        default="auto", description="run eq. 5's PONO in lift_channels channels and project back to C: "
        "auto = only when C < 3 (PONO over 1 or 2 channels collapses), always = for any C")
    lift_channels: int = Field(default=4, ge=3, description="L, the channels PONO normalises when lifted")
    masked: bool = Field(default=True, description="false: plain convolutions in both ARNs (table 7's "
                         "ablation without masked convolutions; the orderings are then unused)")


@register(
    "conditioners", "motionflow_conditioner", version=1, config=MotionFlowConditionerConfig,
    summary="MotionFlow's ARN1/ARN2 LMConv stacks merged by eq. 5 (PONO, sigmoid gate, residual).",
    examples=[
        {"config": {"channels": [4], "masked": False}, "in_shape": (3, 4, 4), "out_shape": None, "batch": (2,)},
        {"config": {"channels": [4, 3]}, "in_shape": (3, 5, 4), "out_shape": None, "batch": (2,)},
        {"config": {"channels": [4], "merge": "concat", "ones_channel": False,
                    "ordering1": "s_curve", "ordering2": {"curve": "hilbert", "flip_rows": True}},
         "in_shape": (2, 4, 4), "out_shape": (2, 4, 4), "batch": (1, 2)},
        {"config": {"channels": [3]}, "in_shape": (1, 3, 4), "out_shape": None, "batch": (2,)},
        {"config": {"channels": [3], "lift": "always", "lift_channels": 3}, "in_shape": (5, 3, 3),
         "out_shape": (5, 3, 3), "batch": (2,)},
    ],
)
class MotionFlowConditioner(Conditioner):
    """``u = x + PONO(c1) * sigmoid(c2)``, ``c1, c2 = split(ARN1(x) * ARN2(x))`` (eq. 5).

    ``in_shape=(C, H, W)``: channels are the features per joint, rows the frames, columns the
    joints; the output has the same shape. With ``C < 3`` (or ``lift="always"``) ``c1`` has
    ``lift_channels`` channels and ``c3`` is projected back to ``C`` by :attr:`projection`. See
    the module docstring for the details.
    """

    def __init__(
        self,
        ordering1: Ordering | str = "raster",
        ordering2: Ordering | str = "column_major",
        channels: list[int] = (32, 16),
        kernel_size: int = 3,
        dilation: int = 2,
        activation: str = "elu",
        dropout: float = 0.0,
        merge: str = "product",
        ones_channel: bool = True,
        eps: float = 1e-5,
        lift: str = "auto",
        lift_channels: int = 4,
        masked: bool = True,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 3:
            raise ShapeError(f"MotionFlowConditioner: in_shape must be (C, H, W), got {self.in_shape}")
        if out_shape is not None and self.requested_out_shape != self.in_shape:
            raise ShapeError(
                f"MotionFlowConditioner: eq. 5 adds to x, so the output has x's shape {self.in_shape}; "
                f"out_shape {self.requested_out_shape} was requested"
            )
        c, h, w = self.in_shape
        if not masked and kernel_size % 2 == 0:
            raise ShapeError(f"MotionFlowConditioner: kernel_size must be odd (centred kernels), got {kernel_size}")
        self.merge, self.ones_channel, self.eps = merge, ones_channel, eps
        lifted = lift == "always" or c < 3
        if lifted and lift_channels < 3:
            raise ShapeError(
                f"MotionFlowConditioner: lift_channels must be >= 3 (PONO over {lift_channels} channels "
                f"keeps at most the signs), got {lift_channels}"
            )
        width = lift_channels if lifted else c  # the channels of c1, which PONO normalises
        arn_in = (c + int(ones_channel), h, w)
        arn_out = 2 * width if merge == "product" else width
        common = dict(channels=list(channels), kernel_size=kernel_size, dilation=dilation,
                      activation=activation, dropout=dropout, masked=masked)
        self.arn1 = autoregressive_network(arn_in, arn_out, Ordering.model_validate(ordering1), **common)
        self.arn2 = autoregressive_network(arn_in, arn_out, Ordering.model_validate(ordering2), **common)
        # P of the lift (C x L); None for C >= 3 without the lift, where c3 = PONO(c1) * sigmoid(c2)
        self.register_parameter(
            "projection", nn.Parameter(nn.init.orthogonal_(torch.empty(c, width))) if lifted else None)

    def output_shape(self) -> tuple[int, ...]:
        return self.in_shape

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        inputs = torch.cat([x, torch.ones_like(x[..., :1, :, :])], dim=-3) if self.ones_channel else x
        a, b = self.arn1(inputs), self.arn2(inputs)
        if self.merge == "product":
            c1, c2 = (a * b).chunk(2, dim=-3)
        else:
            c1, c2 = a, b
        c3 = pono(c1, self.eps) * torch.sigmoid(c2)
        if self.projection is not None:  # the lift: L channels back to C at every position
            c3 = torch.einsum("kl,...lhw->...khw", self.projection, c3)
        return x + c3
