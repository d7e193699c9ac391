"""Multilayer perceptron conditioner (``mlp``), applied to the last axis of its input.

Used as the scale and shift networks of affine couplings. FRMDN (Razavi, Hosseini & Behzad
2020, arXiv:2008.02144; frmdn.txt, section 3.2, the
paragraph after eq. 13) uses for ``s`` "a two-layer network with a LeakyReLU activation for the
first layer and a Tanh for the last", and for ``t`` the same without the last activation::

    s_net = {"type": "mlp", "hidden": [64], "activation": "leaky_relu", "output_activation": "tanh"}
    t_net = {"type": "mlp", "hidden": [64], "activation": "leaky_relu"}
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.core import ComponentConfig, Conditioner, ShapeError, register
from eddies.core.init import zero_init_
from eddies.core.shapes import batch_axes


class MLPConfig(ComponentConfig):
    """Config of :class:`MLP`."""

    hidden: list[int] = Field(default=[64, 64], description="widths of the hidden layers")
    activation: ActivationName = "relu"
    output_activation: ActivationName = "none"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="after each hidden activation")
    residual: bool = Field(
        default=False, description="add a hidden layer's input to its output where widths agree"
    )
    zero_init_last: bool = Field(
        default=False, description="zero weights and bias of the last layer (identity-start flows)"
    )


@register(
    "conditioners", "mlp", version=1, config=MLPConfig,
    summary="Multilayer perceptron on the last axis (vectors or sequences of vectors).",
    examples=[
        {"config": {"hidden": [8, 8], "residual": True, "dropout": 0.1}, "in_shape": (3,),
         "out_shape": (5,), "batch": (2,)},
        {"config": {"hidden": [6], "activation": "leaky_relu", "output_activation": "tanh"},
         "in_shape": (4,), "out_shape": (4,), "batch": (2, 3)},
        {"config": {"hidden": []}, "in_shape": (2,), "out_shape": (3,), "batch": (1,)},
    ],
)
class MLP(Conditioner):
    """``y = act_out(W_L h_{L-1} + b_L)``, ``h_l = dropout(act(W_l h_{l-1} + b_l))`` (+ ``h_{l-1}``
    when ``residual`` and the widths agree), ``h_0 = x``.

    Built with ``in_shape=(F,)`` and ``out_shape=(G,)`` (required); works on ``(B, F)`` and on
    the last axis of ``(B, T, F)`` or any ``(..., F)``.

    Example::

        >>> import torch
        >>> net = MLP(hidden=[16], in_shape=(3,), out_shape=(2,))
        >>> net(torch.randn(4, 7, 3)).shape
        torch.Size([4, 7, 2])
    """

    def __init__(
        self,
        hidden: list[int] = (64, 64),
        activation: str = "relu",
        output_activation: str = "none",
        dropout: float = 0.0,
        residual: bool = False,
        zero_init_last: bool = False,
        *,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...] | None = None,
    ):
        super().__init__(in_shape, out_shape)
        if len(self.in_shape) != 1:
            raise ShapeError(f"MLP: in_shape must be (features,), got {self.in_shape}")
        if self.requested_out_shape is None or len(self.requested_out_shape) != 1:
            raise ShapeError(f"MLP: out_shape must be given as (features,), got {out_shape}")
        widths = [self.in_shape[0], *hidden]
        self.residual = residual
        self.hidden = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), make_activation(activation), nn.Dropout(dropout))
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.last = nn.Linear(widths[-1], self.requested_out_shape[0])
        self.output_activation = make_activation(output_activation)
        if zero_init_last:
            zero_init_(self.last)

    def output_shape(self) -> tuple[int, ...]:
        return self.requested_out_shape

    def forward(self, x: Tensor) -> Tensor:
        batch_axes(self, x, self.in_shape)
        h = x
        for layer in self.hidden:
            out = layer(h)
            h = out + h if self.residual and out.shape == h.shape else out
        return self.output_activation(self.last(h))
