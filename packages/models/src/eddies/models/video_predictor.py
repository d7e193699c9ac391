"""Model kind ``video_predictor``: a deterministic recurrent next-frame predictor on patched frames
(PredRNN, MotionRNN, ConvLSTM).

References: MotionRNN, Wu, Yao, Wang & Long, CVPR 2021, arXiv:2103.02243 (motionrnn_supplement.txt:
MotionGRU's eqs. 1-3; the released code github.com/thuml/MotionRNN); PredRNN, Wang, Long, Wang,
Gao & Yu, NeurIPS 2017 (ST-LSTM, eq. 3); ConvLSTM, Shi et al., NeurIPS 2015, arXiv:1506.04214;
scheduled sampling, Bengio, Vinyals, Jaitly & Shazeer, NeurIPS 2015, arXiv:1506.03099. The
protocol: ../shared/protocols/motionrnn_mmnist.md.

The data are a condition ``x`` of ``k`` frames and a target ``y`` of ``T`` frames of one shape
``(C, H, W)`` (``moving_mnist``: ``(10, 1, 64, 64)`` and ``(10, 1, 64, 64)``, values in
``[0, 1]``). Let ``s_1, ..., s_{k+T}`` be the frames of ``[x, y]``.

**Patches.** Each frame is cut into ``p x p`` patches stacked as channels (space to depth, the
authors' ``reshape_patch``): ``P(s)`` has shape ``(C p^2, H/p, W/p)``, channel ``(i p + j) C + c``
holding pixel ``(h p + i, w p + j)`` of channel ``c``; :func:`patchify` and :func:`unpatchify`
(its exact inverse) are einops rearrangements.

**Recurrence.** The ``rnn`` slot is a :class:`~eddies.core.SequenceConditioner` over patched
frames (``predrnn``: PredRNN's ST-LSTM stack, with ``motion: true`` MotionRNN's MotionGRU between
the layers and its motion highway, with ``cell: conv_lstm`` a ConvLSTM stack; its ``variant``
switches MotionRNN's parts to the authors' code, see :mod:`eddies.conditioners.predrnn`). Its
top hidden state goes through a bias-free 1x1 convolution ``W_out`` to the next frame::

    h_t, state_t = rnn.step(P(u_t), state_{t-1}),     ŝ_{t+1} = P^{-1}(W_out * h_t),   t = 1, ..., k+T-1

with input ``u_t = s_t`` for the ``k`` input frames. For ``t > k``:

- training (scheduled sampling): ``u_t = s_t`` with probability ``ε`` and ``u_t = ŝ_t`` (the
  model's own previous output, gradients flowing through it as in the authors' code) otherwise,
  drawn independently per sequence and frame. ``ε`` follows the training progress ``π =``
  :attr:`~eddies.core.Model.progress` (the trainer's ``set_progress``)::

      ε(π) = sampling_start + (sampling_end - sampling_start) * min(1, π / sampling_decay)

  i.e. a linear fall from ``sampling_start`` (1) to ``sampling_end`` (0) over the first
  ``sampling_decay`` of training, then constant. The protocol's paper schedule (1.0, minus 2e-5
  per iteration until iteration 50,000 of 80,000) is ``sampling_decay: 0.625``; its reduced
  configuration is ``0.6``;
- evaluation (``model.eval()``, so also the validation loss) and :meth:`predict` / :meth:`sample`:
  ``u_t = ŝ_t`` always (fully autoregressive: no true target frame is read).

**Loss.** The mean squared error over every next-frame prediction and pixel (the authors'
``MSELoss`` over frames 2..k+T; ``T`` is the batch's, so a validation split with a longer
horizon is scored over its own frames)::

    loss = mean_{b, t = 2..k+T, pixels} (ŝ_t - s_t)^2

The dict also holds ``mse_inputs`` (frames 2..k, the predictions made while reading the input),
``mse_targets`` (the ``T`` target frames) and ``teacher_forcing`` (the current ``ε``; 0 in
evaluation). With ``reverse > 0`` each training sequence ``s_1..s_{k+T}`` is played backwards
with that probability before the split into input and target (reverse-time augmentation; off
by default, and never in evaluation). The authors' trainer (``--reverse_input 1``, used in their
human-motion script) instead averages the loss of the batch and of the batch played backwards;
``reverse: 0.5`` shows the model the same two directions equally often in one pass.

**Generation.** ``predict(batch, prefix=q, horizon=h)`` reads ``x`` and the first ``q`` target
frames, then rolls out ``h`` frames (default ``T - q``; ``h`` may exceed ``T``) and returns
``(B, q + h, C, H, W)``, the ``q`` known frames first; frames are clipped to ``[0, 1]`` (the
target's range, as the protocol's metrics clip) when ``clip`` is true. The model is
deterministic: ``temperature`` changes nothing, ``samples`` is checked and ignored by
``predict``, and ``sample(batch, samples=N)`` returns ``N`` identical copies ``(N, B, ...)``.
There is no density: ``log_prob`` raises ``NotImplementedError``.

Example (16 x 16 frames in 4 x 4 patches, two ST-LSTM layers with a MotionGRU between them)::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec({"x": (3, 1, 16, 16), "y": (2, 1, 16, 16)}, target="y", condition="x")
    >>> rnn = {"type": "predrnn", "hidden": 8, "num_layers": 2, "filter_size": 3, "motion": True}
    >>> model = build({"type": "video_predictor", "rnn": rnn, "patch": 4}, "models", data=data)
    >>> batch = {"x": torch.rand(2, 3, 1, 16, 16), "y": torch.rand(2, 2, 1, 16, 16)}
    >>> sorted(model.loss(batch))
    ['loss', 'mse_inputs', 'mse_targets', 'teacher_forcing']
    >>> model.predict(batch).shape, model.sample(batch, samples=3).shape
    (torch.Size([2, 2, 1, 16, 16]), torch.Size([3, 2, 2, 1, 16, 16]))
    >>> model.predict(batch, prefix=1, horizon=4).shape
    torch.Size([2, 5, 1, 16, 16])
"""

from __future__ import annotations

import torch
from einops import rearrange
from pydantic import Field, model_validator
from torch import Tensor, nn

from eddies.core.conditioner import SequenceConditioner
from eddies.core.errors import RecipeError, ShapeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.spec import Spec, SpecOf
from eddies.core.task import DataSpec
from eddies.models.slots import build_slot, checked_condition, known_prefix, sequence_span


def patchify(frames: Tensor, patch: int) -> Tensor:
    """Space to depth: ``(..., C, H, W)`` to ``(..., C p^2, H/p, W/p)`` (the module docstring's ``P``).

    >>> import torch
    >>> frame = torch.arange(16.).view(1, 4, 4)
    >>> patchify(frame, 2).tolist()          # each channel is one position inside the patches
    [[[0.0, 2.0], [8.0, 10.0]], [[1.0, 3.0], [9.0, 11.0]], [[4.0, 6.0], [12.0, 14.0]], [[5.0, 7.0], [13.0, 15.0]]]
    """
    return rearrange(frames, "... c (h p) (w q) -> ... (p q c) h w", p=patch, q=patch)


def unpatchify(patches: Tensor, patch: int) -> Tensor:
    """Depth to space, the exact inverse of :func:`patchify`: ``(..., C p^2, h, w)`` to ``(..., C, h p, w p)``."""
    return rearrange(patches, "... (p q c) h w -> ... c (h p) (w q)", p=patch, q=patch)


class VideoPredictorConfig(ComponentConfig):
    """Config of :class:`VideoPredictor`."""

    rnn: SpecOf("conditioners") = Field(
        "predrnn", description="sequence conditioner over patched frames (predrnn: ST-LSTM or ConvLSTM stack, "
        "motion: true for MotionRNN, variant: paper | authors)")
    patch: int = Field(4, ge=1, description="p: frames are cut into p x p patches stacked as channels")
    sampling_start: float = Field(1.0, ge=0.0, le=1.0, description="scheduled sampling: P(true frame) at the start")
    sampling_end: float = Field(0.0, ge=0.0, le=1.0, description="scheduled sampling: P(true frame) after the decay")
    sampling_decay: float = Field(
        0.6, gt=0.0, le=1.0, description="fraction of training over which P(true frame) falls linearly")
    reverse: float = Field(0.0, ge=0.0, le=1.0, description="probability that a training sequence is played backwards")
    clip: bool = Field(True, description="predict() and sample() clip frames to [0, 1]")

    @model_validator(mode="after")
    def _falls(self) -> VideoPredictorConfig:
        if self.sampling_end > self.sampling_start:
            raise ValueError(f"sampling_end {self.sampling_end} exceeds sampling_start {self.sampling_start}: "
                             "scheduled sampling moves from true frames to the model's own")
        return self


@register(
    "models", "video_predictor", version=1, config=VideoPredictorConfig,
    summary="Deterministic next-frame predictor: patches, a recurrent stack (PredRNN / MotionRNN / ConvLSTM), "
    "1x1 output conv, MSE with scheduled sampling.",
)
class VideoPredictor(Model):
    """``ŝ_{t+1} = P^{-1}(W_out * rnn(P(u_t)))`` trained by next-frame MSE; see the module docstring."""

    kind = "video_predictor"

    def __init__(self, rnn: Spec, patch: int = 4, sampling_start: float = 1.0, sampling_end: float = 0.0,
                 sampling_decay: float = 0.6, reverse: float = 0.0, clip: bool = True, *, data: DataSpec):
        super().__init__(data)
        condition, target = data.condition_shape, tuple(data.target_shape)
        if condition is None or len(target) != 4 or len(condition) != 4 or tuple(condition[1:]) != target[1:]:
            raise RecipeError(
                f"{self.kind} needs a condition of input frames (k, C, H, W) and a target of frames (T, C, H, W) "
                f"of the same frame shape; got condition {data.condition!r} of shape {condition} and target "
                f"{data.target!r} of shape {target}", "model",
            )
        self.input_frames, self.steps, self.frame = condition[0], target[0], target[1:]
        c, h, w = self.frame
        if h % patch or w % patch:
            raise RecipeError(f"{self.kind}: the frames ({h} x {w}) are not divisible into {patch} x {patch} patches",
                              "model.patch")
        self.patch = patch
        in_shape = (c * patch * patch, h // patch, w // patch)
        self.rnn = build_slot(self.kind, "rnn", rnn, f"in_shape={in_shape} (patched frames) and out_shape=None",
                              in_shape=in_shape, out_shape=None)
        if not isinstance(self.rnn, SequenceConditioner):
            raise RecipeError(f"{self.kind}: the rnn {rnn.name!r} is not a sequence conditioner (initial_state, "
                              "step); use predrnn", "model.rnn")
        out = tuple(self.rnn.output_shape())
        if len(out) != 3 or out[1:] != in_shape[1:]:
            raise RecipeError(f"{self.kind}: the rnn {rnn.name!r} states per-step output {out}; it must be "
                              f"(hidden, {in_shape[1]}, {in_shape[2]}), the patched frames' grid", "model.rnn")
        self.head = nn.Conv2d(out[0], in_shape[0], 1, bias=False)  # W_out
        self.sampling_start, self.sampling_end, self.sampling_decay = sampling_start, sampling_end, sampling_decay
        self.reverse, self.clip = reverse, clip

    # pieces --------------------------------------------------------------------------------
    def teacher_forcing(self) -> float:
        """``ε``, the probability of feeding a true target frame: the schedule at :attr:`progress`
        in training mode, 0 in evaluation mode."""
        if not self.training:
            return 0.0
        fraction = min(1.0, self.progress / self.sampling_decay)
        return self.sampling_start + (self.sampling_end - self.sampling_start) * fraction

    def teacher_mask(self, rows: int, steps: int, device: torch.device | None = None) -> Tensor:
        """``(rows, steps)`` Bernoulli(``ε``) draws: 1 where the true frame is fed."""
        return (torch.rand(rows, steps, device=device) < self.teacher_forcing()).float()

    def rollout(self, frames: Tensor, known: int, steps: int, mask: Tensor | None = None) -> Tensor:
        """Predictions ``ŝ_2, ..., ŝ_{steps+1}`` ``(B, steps, C, H, W)`` from frames ``(B, L, C, H, W)``.

        Step ``t`` (1-based) reads ``s_t`` for ``t <= known``; later it reads ``mask[:, t - known - 1]
        * s_t + (1 - mask) * ŝ_t`` with a mask (so ``frames`` must hold ``s_t``), else ``ŝ_t``.
        """
        if frames.dim() != 5 or tuple(frames.shape[2:]) != self.frame or not 1 <= known <= frames.shape[1]:
            raise ShapeError(f"{self.kind}: rollout needs frames (B, L >= {known} >= 1, "
                             f"{', '.join(map(str, self.frame))}), got {tuple(frames.shape)}")
        if mask is not None and (mask.shape[0] != frames.shape[0] or mask.shape[1] < steps - known
                                 or frames.shape[1] < steps):
            raise ShapeError(f"{self.kind}: a teacher mask for {steps} steps after {known} known frames needs "
                             f"{steps} frames and {steps - known} mask columns; got frames {tuple(frames.shape)} "
                             f"and mask {tuple(mask.shape)}")
        patches = patchify(frames, self.patch)
        state = self.rnn.initial_state(frames.shape[0], frames.device, frames.dtype)
        outputs: list[Tensor] = []
        for t in range(steps):  # 0-based: step t reads frame t + 1 (1-based) and predicts frame t + 2
            if t < known:
                inputs = patches[:, t]
            elif mask is None:
                inputs = outputs[-1]
            else:
                m = mask[:, t - known].to(patches.dtype).view(-1, 1, 1, 1)
                inputs = m * patches[:, t] + (1 - m) * outputs[-1]
            hidden, state = self.rnn.step(inputs, state)
            outputs.append(self.head(hidden))
        if not outputs:
            return frames[:, :0]
        return unpatchify(torch.stack(outputs, 1), self.patch)

    def _frames(self, batch: dict[str, Tensor]) -> Tensor:
        x = checked_condition(self.kind, self.data, batch)
        y = batch.get(self.data.target)
        if y is None or y.dim() != 5 or y.shape[0] != x.shape[0] or y.shape[1] < 1 or tuple(y.shape[2:]) != self.frame:
            got = None if y is None else tuple(y.shape)
            raise ShapeError(f"{self.kind}: the target {self.data.target!r} must have shape "
                             f"({x.shape[0]}, T >= 1, {', '.join(map(str, self.frame))}), got {got}")
        return torch.cat([x, y.to(x.dtype)], 1)

    # the contract --------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Next-frame MSE over frames ``2..k+T`` with scheduled sampling (module docstring)."""
        frames = self._frames(batch)
        if self.training and self.reverse > 0:
            flip = (torch.rand(frames.shape[0], device=frames.device) < self.reverse).view(-1, 1, 1, 1, 1)
            frames = torch.where(flip, frames.flip(1), frames)
        k, total = self.input_frames, frames.shape[1]
        mask = self.teacher_mask(frames.shape[0], total - 1 - k, frames.device)
        predictions = self.rollout(frames, k, total - 1, mask)
        errors = (predictions - frames[:, 1:]).square()
        out = {"loss": errors.mean(), "mse_targets": errors[:, k - 1:].detach().mean(),
               "teacher_forcing": torch.tensor(self.teacher_forcing())}
        if k > 1:
            out["mse_inputs"] = errors[:, :k - 1].detach().mean()
        return out

    def _generate(self, method: str, batch: dict[str, Tensor], prefix: int | None, horizon: int | None) -> Tensor:
        x = checked_condition(self.kind, self.data, batch)
        prefix, horizon = sequence_span(self.kind, method, self.steps, prefix, horizon)
        given = known_prefix(self.kind, method, self.data, batch, x, prefix)
        known = torch.cat([x, given], 1)
        predictions = self.rollout(known, known.shape[1], known.shape[1] + horizon - 1)[:, known.shape[1] - 1:]
        if self.clip:
            predictions = predictions.clamp(0.0, 1.0)
        return torch.cat([given, predictions], 1)

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """The autoregressive rollout ``(B, prefix + horizon, C, H, W)``; deterministic (module docstring)."""
        self.check_samples("predict", samples)
        return self._generate("predict", batch, prefix, horizon)

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """:meth:`predict`'s frames; ``samples=N`` gives ``N`` identical copies ``(N, B, ...)``."""
        n = self.check_samples("sample", samples)
        frames = self._generate("sample", batch, prefix, horizon)
        return frames if samples is None else frames.expand(n, *frames.shape).clone()

    def log_prob(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{self.kind} is a deterministic predictor: it has no density (use predict)")
