"""Building a model's slots: a spec that refuses the shapes a model builds it with is a
:class:`~eddies.core.errors.RecipeError` at ``model.<slot>``, and the optional ``encoder`` slot
shared by ``conditional_flow`` and ``sequence_flow`` (with :func:`checked_condition`, the batch's
condition those models feed it), and the frame-sequence kinds' ``prefix`` / ``horizon``
(:func:`sequence_span`, :func:`known_prefix`: ``temporal_flow`` and the motion baselines), and the
``flow_layout`` view of a frame the flow models (:func:`frame_layout`: ``temporal_flow``, ``sequence_flow``).

Example (an ``mlp`` encoder of a 2-vector condition, asked for 4 features)::

    >>> import eddies.conditioners
    >>> from eddies.core.spec import validate_spec
    >>> mlp = validate_spec({"type": "mlp", "hidden": [8]}, "conditioners")
    >>> build_encoder("conditional_flow", mlp, [4], "x", (2,)).output_shape()
    (4,)
    >>> build_encoder("conditional_flow", None, [4], "x", (2,))
    Traceback (most recent call last):
    ...
    eddies.core.errors.RecipeError: model.encoder_shape: conditional_flow: encoder_shape is set but there is no encoder
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from einops import EinopsError, rearrange

from eddies.core.errors import RecipeError, ShapeError
from eddies.core.spec import Spec
from eddies.core.task import DataSpec


def build_slot(kind: str, slot: str, spec: Spec, how: str, **shapes: Any) -> Any:
    """``spec.build(**shapes)``; a ``ShapeError`` becomes a ``RecipeError`` at ``model.<slot>``
    saying how ``kind`` builds it (``how``, e.g. ``"shape=(3,) and context_shape=None"``)."""
    try:
        return spec.build(**shapes)
    except ShapeError as err:
        raise RecipeError(f"{kind} builds its {slot} with {how}; {spec.name!r} refused: {err}",
                          f"model.{slot}") from None


def build_encoder(kind: str, encoder: Spec | None, encoder_shape: list[int] | None,
                  condition_name: str | None, condition: tuple[int, ...] | None) -> Any:
    """The ``encoder`` slot: ``None`` without an encoder, else the conditioner built with
    ``in_shape`` = the condition's shape and ``out_shape = encoder_shape``, stating one tensor shape."""
    if encoder is None:
        if encoder_shape is not None:
            raise RecipeError(f"{kind}: encoder_shape is set but there is no encoder", "model.encoder_shape")
        return None
    if condition is None:
        raise RecipeError(f"{kind}: an encoder is given, but the data has no condition to encode",
                          "model.encoder")
    in_shape, out_shape = tuple(condition), None if encoder_shape is None else tuple(encoder_shape)
    net = build_slot(kind, "encoder", encoder, f"in_shape={in_shape} (the condition {condition_name!r}) and "
                     f"out_shape={out_shape} (encoder_shape)", in_shape=in_shape, out_shape=out_shape)
    if not isinstance(net.output_shape(), tuple):
        raise RecipeError(
            f"{encoder.name!r} states output {net.output_shape()!r}; {kind}'s encoder must "
            "give one tensor shape", "model.encoder",
        )
    return net


def checked_condition(kind: str, data: DataSpec, batch: dict[str, Any], rows: int | None = None) -> Any:
    """The batch's condition, checked to have shape ``(rows, *condition_shape)`` (any batch size
    when ``rows`` is None); ``None`` for unconditional data."""
    name = data.condition
    if name is None:
        return None
    if name not in batch:
        raise ShapeError(f"{kind}: the batch has no condition {name!r}")
    x, event = batch[name], tuple(data.condition_shape)
    if x.dim() != 1 + len(event) or tuple(x.shape[1:]) != event or rows not in (None, x.shape[0]):
        want = ", ".join(map(str, ("batch" if rows is None else rows, *event)))
        raise ShapeError(f"{kind}: condition {name!r} must have shape ({want}), got {tuple(x.shape)}")
    return x


def sequence_span(kind: str, method: str, steps: int, prefix: int | None, horizon: int | None) -> tuple[int, int]:
    """``(prefix, horizon)`` of a generation call: ``prefix`` default 0, ``horizon`` default the rest
    of the target's ``steps``; a ValueError unless ``prefix, horizon >= 0`` and ``prefix + horizon >= 1``."""
    prefix = 0 if prefix is None else prefix
    horizon = steps - prefix if horizon is None else horizon
    if prefix < 0 or horizon < 0 or prefix + horizon < 1:
        raise ValueError(f"{kind}.{method}: need prefix >= 0, horizon >= 0 and prefix + horizon >= 1, "
                         f"got prefix={prefix}, horizon={horizon}")
    return prefix, horizon


def known_prefix(kind: str, method: str, data: DataSpec, batch: dict[str, Any], x: Any, prefix: int) -> Any:
    """The first ``prefix`` target frames ``(B, prefix, *frame)`` of the batch, in ``x``'s dtype, checked
    against the condition ``x`` ``(B, T_in, *frame)`` (empty for ``prefix`` 0); else a ShapeError."""
    frame = tuple(x.shape[2:])
    if not prefix:
        return x[:, :0]
    y = batch.get(data.target)
    if y is None or y.dim() != x.dim() or y.shape[0] != x.shape[0] or tuple(y.shape[2:]) != frame or y.shape[1] < prefix:
        got = None if y is None else tuple(y.shape)
        raise ShapeError(
            f"{kind}.{method}: prefix={prefix} needs the target {data.target!r} of shape "
            f"({x.shape[0]}, T >= {prefix}, {', '.join(map(str, frame))}) in the batch, got {got}")
    return y[:, :prefix].to(x.dtype)


def frame_layout(pattern: str | None, frame: tuple[int, ...]) -> tuple[Callable, Callable, tuple[int, ...]]:
    """``(to_flow, from_flow, flow_shape)``: the view of a frame (or step) ``frame`` the flow models by the
    einops ``pattern`` (``model.flow_layout``, e.g. ``"c j -> j 1 c"``; None: as is), and back."""
    if pattern is None:
        return (lambda v: v), (lambda v: v), frame
    left, arrow, right = pattern.partition("->")
    if not arrow:
        raise RecipeError(f"flow_layout {pattern!r} must read 'axes -> axes', e.g. 'c j -> j 1 c'", "model.flow_layout")
    forward, backward = f"n {left.strip()} -> n {right.strip()}", f"n {right.strip()} -> n {left.strip()}"
    sizes = {k: v for k, v in zip(left.split(), frame, strict=False) if k.isidentifier()}
    try:
        shape = tuple(rearrange(torch.zeros(1, *frame), forward).shape[1:])
        rearrange(torch.zeros(1, *shape), backward, **sizes)
    except (EinopsError, RuntimeError) as err:
        raise RecipeError(f"flow_layout {pattern!r} does not fit frames of shape {frame}: {err}",
                          "model.flow_layout") from None
    return (lambda v: rearrange(v, forward)), (lambda v: rearrange(v, backward, **sizes)), shape
