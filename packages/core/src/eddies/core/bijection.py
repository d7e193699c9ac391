"""The bijection contract every invertible layer implements.

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
"""

from __future__ import annotations

from torch import Tensor, nn

from eddies.core.errors import ShapeError


class Bijection(nn.Module):
    """Base class of invertible layers; subclasses implement ``forward`` and ``inverse``."""

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
        """Check the context against :attr:`context_shape` (and that it is given iff expected)."""
        if self.context_shape is None:
            if context is not None:
                raise ShapeError(f"{type(self).__name__} is unconditional but received a context")
            return
        if context is None:
            raise ShapeError(
                f"{type(self).__name__} is conditional and needs a context of shape "
                f"(batch, {', '.join(map(str, self.context_shape))})"
            )
        self.check(context, self.context_shape, "context")
        if context.shape[0] != batch:
            raise ShapeError(
                f"{type(self).__name__}: context batch {context.shape[0]} != input batch {batch}"
            )


def sum_except_batch(t: Tensor) -> Tensor:
    """Sum over every axis but the first: per-sample log-determinants of elementwise maps."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def zeros_logdet(x: Tensor) -> Tensor:
    """A zero log-determinant of shape (batch,) on x's device and dtype (volume-preserving maps)."""
    return x.new_zeros(x.shape[0])


__all__ = ["Bijection", "sum_except_batch", "zeros_logdet"]
