"""The head of a conditional prior: the network from a context to the prior's raw parameters.

A conditional prior owns its head (docs/contracts.md). With ``head=None`` the head is one linear
layer on the flattened context, the output layer of a mixture density network (Razavi, Hosseini
& Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020, arXiv:2008.02144,
frmdn.txt eqs. 5-7: the activations that make the parameters valid are applied by the prior). A
``head`` spec names any registered conditioner, built with ``in_shape=context_shape`` and
``out_shape=`` the raw-parameter shape the prior needs; FRMDN's "nonlinear layer to map the
hidden state to the parameter space of a GMM" (frmdn.txt section 5.1, application 3) is for
example::

    prior: {type: gmm_lowrank, components: 10, rank: 3,
            head: {type: mlp, hidden: [64], activation: tanh}}

Example::

    >>> import torch
    >>> head = ContextHead((5,), (7,))
    >>> head(torch.randn(4, 5)).shape
    torch.Size([4, 7])
"""

from __future__ import annotations

import math

from pydantic import Field
from torch import Tensor, nn

from eddies.core import ComponentConfig, ShapeError, Spec, SpecOf


class HeadConfig(ComponentConfig):
    """Config fields shared by the priors that can take their parameters from a context."""

    head: SpecOf("conditioners") | None = Field(
        default=None,
        description="conditioner from the context to the raw parameters; None = one linear layer",
    )


def check_head_use(owner: str, head: Spec | None, context_shape: tuple[int, ...] | None) -> None:
    """A ``head`` spec only makes sense for a conditional prior: say so instead of ignoring it."""
    if head is not None and context_shape is None:
        raise ShapeError(
            f"{owner}: a head ({head.name!r}) was given but the prior was built without a context "
            "(context_shape=None); remove the head or condition the prior"
        )


class ContextHead(nn.Module):
    """Maps a context ``(N, *context_shape)`` to raw parameters ``(N, *out_shape)``."""

    def __init__(
        self,
        context_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        spec: Spec | None = None,
        owner: str = "prior",
    ):
        super().__init__()
        self.out_shape = tuple(out_shape)
        if spec is None:
            self.net = nn.Sequential(
                nn.Flatten(1),
                nn.Linear(math.prod(context_shape), math.prod(out_shape)),
                nn.Unflatten(1, self.out_shape),
            )
            return
        self.net = spec.build(in_shape=tuple(context_shape), out_shape=self.out_shape)
        got = self.net.output_shape()
        if not isinstance(got, tuple) or tuple(got) != self.out_shape:
            raise ShapeError(
                f"{owner}: head {spec.name!r} states output shape {got}, but the prior needs "
                f"{self.out_shape} from a context of shape {tuple(context_shape)}"
            )

    def forward(self, context: Tensor) -> Tensor:
        return self.net(context)
