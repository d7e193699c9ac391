"""Model kinds ``zero_velocity`` and ``constant_velocity``: the deterministic baselines of motion
prediction.

References: Martinez, Black & Romero, "On human motion prediction using recurrent neural
networks", CVPR 2017, arXiv:1705.02445 (the zero-velocity baseline); MotionFlow (Zand, Etemad &
Greenspan, IEEE TPAMI 2023, arXiv:2104.04391, motionflow.txt) is compared with both in
../shared/protocols/motionflow_cmu.md, "Baselines" ("zero-velocity (repeat the last input
frame), constant velocity in exp-map space").

The data are a condition ``x`` of ``T_in`` frames and a target ``y`` of ``T`` frames of one frame
shape ``F`` (``x``: ``(T_in, *F)``, ``y``: ``(T, *F)``; any ``F``, e.g. ``cmu_mocap``'s ``(3, 24)``).
With ``s_1, ..., s_n`` the known frames (the input window, then the ``prefix`` first target
frames, if any), the ``k``-th frame generated after them (``k = 1, ..., H``) is

    zero_velocity:       ŷ_k = s_n,
    constant_velocity:   ŷ_k = s_n + k (s_n - s_{n-1}),

elementwise, in the space the task serves (``cmu_mocap``: normalised exp maps; the task's
per-(component, joint) normalisation is affine, so the rules give the same frames in raw exp-map
space). No damping or clipping: the plain rules of the protocol page.

Both follow :class:`eddies.core.Model`'s generation arguments: ``predict`` and ``sample`` return
``(B, prefix + horizon, *F)`` (``prefix`` default 0, its frames copied from ``batch[y]``;
``horizon`` default ``T - prefix``, and it may exceed ``T``); ``sample(samples=N)`` gives ``N``
identical copies ``(N, B, prefix + horizon, *F)``: the models are deterministic, so
``temperature`` and ``samples`` change no frame. They have no parameters (an empty
``state_dict``) and no density: ``log_prob``, hence ``loss``, raises ``NotImplementedError``
naming the kind (there is nothing to train).

Example::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec({"x": (3, 1), "y": (2, 1)})
    >>> batch = {"x": torch.tensor([[[0.0], [1.0], [3.0]]])}          # one row, frames 0, 1, 3
    >>> build("zero_velocity", "models", data=data).predict(batch).flatten().tolist()
    [3.0, 3.0]
    >>> model = build("constant_velocity", "models", data=data)
    >>> model.predict(batch, horizon=4).flatten().tolist(), model.sample(batch, samples=5).shape
    ([5.0, 7.0, 9.0, 11.0], torch.Size([5, 1, 2, 1]))
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from eddies.core.errors import RecipeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.task import DataSpec
from eddies.models.slots import checked_condition, known_prefix, sequence_span


class MotionBaseline(Model):
    """A deterministic rule continuing the known frames; subclasses define :meth:`continue_frames`."""

    kind = "motion_baseline"
    history = 1  # the number of known frames the rule reads

    def __init__(self, data: DataSpec):
        super().__init__(data)
        condition, target = data.condition_shape, tuple(data.target_shape)
        if condition is None or len(condition) < 1 or len(target) < 1 or tuple(condition[1:]) != target[1:]:
            raise RecipeError(
                f"{self.kind} needs a condition of input frames (T_in, *frame) and a target of frames "
                f"(T, *frame) of the same frame shape; got condition {data.condition!r} of shape {condition} "
                f"and target {data.target!r} of shape {target}", "model",
            )
        if condition[0] < self.history:
            raise RecipeError(
                f"{self.kind} reads the last {self.history} input frames, but the condition {data.condition!r} "
                f"of shape {tuple(condition)} has {condition[0]}", "model",
            )
        self.steps, self.frame = target[0], target[1:]

    def continue_frames(self, known: Tensor, horizon: int) -> Tensor:
        """``(B, horizon, *frame)``: the frames after ``known`` ``(B, n, *frame)`` (module docstring)."""
        raise NotImplementedError

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{self.kind} is a deterministic baseline: it has no density (use predict)")

    def _generate(self, method: str, batch: dict[str, Tensor], prefix: int | None, horizon: int | None) -> Tensor:
        x = checked_condition(self.kind, self.data, batch)
        prefix, horizon = sequence_span(self.kind, method, self.steps, prefix, horizon)
        known = known_prefix(self.kind, method, self.data, batch, x, prefix)
        return torch.cat([known, self.continue_frames(torch.cat([x, known], dim=1), horizon)], dim=1)

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The rule's frames, ``(B, prefix + horizon, *frame)``; ``samples`` (checked) and
        ``temperature`` change nothing (deterministic)."""
        self.check_samples("predict", samples)
        return self._generate("predict", batch, prefix, horizon)

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """:meth:`predict`'s frames; ``samples=N`` gives ``N`` identical copies ``(N, B, ...)``."""
        n = self.check_samples("sample", samples)
        frames = self._generate("sample", batch, prefix, horizon)
        return frames if samples is None else frames.expand(n, *frames.shape).clone()


@register(
    "models", "zero_velocity", version=1, config=ComponentConfig,
    summary="Deterministic motion baseline: every predicted frame repeats the last known frame.",
)
class ZeroVelocity(MotionBaseline):
    """``ŷ_k = s_n`` for every ``k`` (module docstring)."""

    kind = "zero_velocity"

    def continue_frames(self, known: Tensor, horizon: int) -> Tensor:
        last = known[:, -1:]
        return last.expand(-1, horizon, *last.shape[2:]).clone()


class ConstantVelocityConfig(ComponentConfig):
    hold: list[int] = Field(
        [], description="indices along the frame's first axis held at their last value instead of continued "
        "(particles: [2, 3], the velocities, so the positions move at the last velocity)")


@register(
    "models", "constant_velocity", version=1, config=ConstantVelocityConfig,
    summary="Deterministic motion baseline: the last known frame moved on by k times the last frame-to-frame change.",
)
class ConstantVelocity(MotionBaseline):
    """``ŷ_k = s_n + k (s_n - s_{n-1})`` (module docstring); needs ``T_in >= 2``. The channels
    ``hold`` (indices along the frame's first axis) follow zero velocity's ``ŷ_k = s_n`` instead:
    for ``particles`` frames (x, y, vx, vy) by particles, ``hold: [2, 3]`` is the physical rule,
    positions moving on by their last change (the last velocity, in the task's units) and the
    velocities kept."""

    kind = "constant_velocity"
    history = 2

    def __init__(self, hold: list[int] | None = None, *, data: DataSpec):
        super().__init__(data)
        channels = self.frame[0] if self.frame else 1
        self.hold = sorted(set(hold or []))
        if any(not 0 <= c < channels for c in self.hold):
            raise RecipeError(f"constant_velocity: hold {hold} must index the frame's first axis, 0..{channels - 1} "
                              f"(frame shape {tuple(self.frame)})", "model.hold")

    def continue_frames(self, known: Tensor, horizon: int) -> Tensor:
        last, velocity = known[:, -1:], known[:, -1:] - known[:, -2:-1]
        if self.hold:
            velocity = velocity.clone()
            velocity[:, :, self.hold] = 0
        k = torch.arange(1, horizon + 1, dtype=known.dtype, device=known.device)
        return last + k.reshape(1, horizon, *[1] * (known.dim() - 2)) * velocity
