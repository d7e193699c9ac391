"""The bijection contract every invertible layer implements (written in :class:`Bijection`)."""

from __future__ import annotations

from torch import Tensor, nn

from eddies.core.errors import ShapeError
from eddies.core.shapes import check_context


class Bijection(nn.Module):
    """Base class of invertible layers; subclasses implement ``forward`` and ``inverse``.

    Direction (as in nflows, zuko and FrEIA): ``forward`` maps data ``x`` to latent ``z`` (the
    normalizing direction) and returns ``(z, logdet)`` with ``logdet = log|det ∂z/∂x|`` of shape
    ``(batch,)``; ``inverse`` maps ``z`` back to ``x`` and returns ``(x, log|det ∂x/∂z|)``, which is
    minus the forward log-determinant at the corresponding point. So a flow's log-likelihood is
    ``log p(x) = log p_Z(z) + logdet`` with ``(z, logdet) = flow(x)``.

    No state is carried between calls. Data-dependent initialisation (ActNorm) lives in buffers, so
    it survives ``state_dict`` round trips. Shapes are *event* shapes (without the batch axis) and
    are fixed when the layer is built: ``shape`` is the input's, :attr:`out_shape` the output's
    (different only for reshaping layers such as squeeze), ``context_shape`` that of the context
    (``None`` for an unconditional layer). A tensor of another shape raises :class:`ShapeError`
    naming the layer, the expected and the given shape.

    Context routing: every layer is built with its parent's ``context_shape`` and states its own.
    An unconditional layer states ``None`` whatever it was built with, and a context given to it at
    run time is a :class:`ShapeError` (:meth:`Bijection.check_context`), never ignored. A composite
    passes the context only to its conditional children, and states ``None`` when it has none, so a
    model can tell that nothing in its flow uses the condition.
    """

    def __init__(self, shape: tuple[int, ...], context_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.context_shape = None if context_shape is None else tuple(int(s) for s in context_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Event shape of ``forward``'s output (equal to :attr:`shape` unless overridden)."""
        return self.shape

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    # helpers for subclasses ---------------------------------------------------------------
    def check(self, tensor: Tensor, expected: tuple[int, ...], what: str = "input") -> None:
        """Raise :class:`ShapeError` unless ``tensor`` is ``(batch, *expected)``."""
        if tuple(tensor.shape[1:]) != tuple(expected) or tensor.dim() != len(expected) + 1:
            raise ShapeError(
                f"{type(self).__name__}: {what} must have shape (batch, "
                f"{', '.join(map(str, expected))}), got {tuple(tensor.shape)}"
            )

    def check_context(self, context: Tensor | None, batch: int) -> None:
        """Check the context against :attr:`context_shape`: given iff the layer is conditional,
        of shape ``(batch, *context_shape)`` with the input's ``batch``
        (:func:`eddies.core.shapes.check_context`, the check the priors use too)."""
        check_context(self, context, self.context_shape, batch, batch_dims=1)


def sum_except_batch(t: Tensor) -> Tensor:
    """Sum over every axis but the first: per-sample log-determinants of elementwise maps."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def zeros_logdet(x: Tensor) -> Tensor:
    """A zero log-determinant of shape (batch,) on x's device and dtype (volume-preserving maps)."""
    return x.new_zeros(x.shape[0])


__all__ = ["Bijection", "sum_except_batch", "zeros_logdet"]
