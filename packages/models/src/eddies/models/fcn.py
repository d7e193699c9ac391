"""Model kind ``fcn_segmenter``: a deterministic fully convolutional binary segmenter (FCN baseline).

References: Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI 2020,
arXiv:1905.13288 (cglow.txt).

The FCN baseline of c-Glow's binary segmentation (cglow.txt section 5.2 and table 1, which used
Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015,
arXiv:1411.4038; protocols/cglow_horse.md "Baselines": a small conv net, sigmoid, binary
cross-entropy, trained with the flows' budget). It is the FCN skip architecture at a small
scale: stage ``i`` (``i = 0..n-1``, ``n = len(channels)``) runs ``convs_per_stage`` 3x3
convolutions with ``channels[i]`` channels at resolution ``S / 2^i`` (a 2x2 max pool before
every stage but the first); a 1x1 "score" convolution turns each stage's features into one
logit map ``a_i``; the coarse maps are fused from coarse to fine,

    s_{n-1} = a_{n-1},     s_i = a_i + up2(s_{i+1}),     logit = s_0,

with ``up2`` bilinear upsampling by 2 (FCN-8s fuses three scales the same way), so the output
is one logit per pixel at full resolution and ``p = sigmoid(logit)``.

Training minimises the mean binary cross-entropy over the batch's pixels,

    loss = -(1 / (B H W)) Σ_{b,i,j} [ m_bij log p_bij + (1 - m_bij) log(1 - p_bij) ],

against the exact {0, 1} labels ``batch[labels]`` (shape ``(B, H, W)``; default key ``mask``,
the noise-free mask of ``weizmann_horse``), computed from the logits for stability. The loss
dict is ``{"loss", "bce"}``: there is no ``nll`` (the model has no density over ``y``;
``log_prob`` raises ``NotImplementedError`` and the task reports its NLL as NaN).

Prediction is in the target's space, so the task's rule applies unchanged: ``predict`` returns
``p - target_offset`` repeated over the target's ``C`` channels, shape ``(B, C, H, W)``.
``weizmann_horse`` centres its target (``y = m - 0.5 + noise``) and predicts the mask
``round(mean_c(prediction) + 0.5)``, which with the default ``target_offset = 0.5`` is
``round(p)``: the pixel is horse when ``p > 0.5`` (``p = 0.5`` rounds half to even, to 0). The
model is deterministic: ``predict``'s ``samples`` (checked, then unused: every draw would be the
same) and ``temperature`` change nothing, and ``sample`` raises ``NotImplementedError`` (the
task then draws no sample-spread panel).

Runtime argument ``data``: an image condition ``(C_x, H, W)`` and a target ``(C, H, W)`` of the
same ``H, W``, both divisible by ``2^(n-1)``.

Example::

    >>> import torch
    >>> from eddies.core import DataSpec, build
    >>> data = DataSpec({"y": (3, 8, 8), "x": (3, 8, 8)})
    >>> model = build({"type": "fcn_segmenter", "channels": [4, 8]}, "models", data=data)
    >>> batch = {"x": torch.rand(2, 3, 8, 8), "y": torch.rand(2, 3, 8, 8) - 0.5,
    ...          "mask": torch.randint(0, 2, (2, 8, 8))}
    >>> sorted(model.loss(batch)), model.predict(batch).shape
    (['bce', 'loss'], torch.Size([2, 3, 8, 8]))
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from eddies.conditioners.activations import ActivationName, make_activation
from eddies.core.errors import RecipeError, ShapeError
from eddies.core.model import Model
from eddies.core.registry import ComponentConfig, register
from eddies.core.task import DataSpec
from eddies.models.slots import checked_condition


class FCNSegmenterConfig(ComponentConfig):
    """Config of :class:`FCNSegmenter`."""

    channels: list[int] = Field(
        [32, 64, 128], min_length=1, description="channels of each stage; stage i runs at resolution S / 2^i")
    convs_per_stage: int = Field(2, ge=1, description="3x3 convolutions per stage")
    activation: ActivationName = "relu"
    labels: str = Field("mask", description="batch key of the exact {0, 1} labels, shape (B, H, W)")
    target_offset: float = Field(
        0.5, description="predict() returns p - target_offset per target channel (weizmann_horse "
        "centres its mask by 0.5)")


@register(
    "models", "fcn_segmenter", version=1, config=FCNSegmenterConfig,
    summary="Deterministic FCN (skip-fused score maps, sigmoid, binary cross-entropy): the segmentation baseline.",
)
class FCNSegmenter(Model):
    """Per-pixel ``p = sigmoid(FCN(x))`` trained by binary cross-entropy; see the module docstring."""

    kind = "fcn_segmenter"

    def __init__(self, channels: list[int] = (32, 64, 128), convs_per_stage: int = 2, activation: str = "relu",
                 labels: str = "mask", target_offset: float = 0.5, *, data: DataSpec):
        super().__init__(data)
        condition, target = data.condition_shape, tuple(data.target_shape)
        if condition is None or len(condition) != 3 or len(target) != 3 or tuple(condition[1:]) != target[1:]:
            raise RecipeError(
                f"{self.kind} needs an image condition (C_x, H, W) and an image target (C, H, W) of the "
                f"same H, W; got condition {data.condition!r} of shape {condition} and target "
                f"{data.target!r} of shape {target}", "model",
            )
        factor = 2 ** (len(channels) - 1)
        if target[1] % factor or target[2] % factor:
            raise RecipeError(
                f"{self.kind}: {len(channels)} stages halve the resolution {len(channels) - 1} times, so H and W "
                f"must be divisible by {factor}; the target {data.target!r} has shape {target}", "model.channels",
            )
        self.labels, self.target_offset = labels, float(target_offset)
        self.stages, self.scores = nn.ModuleList(), nn.ModuleList()
        width = condition[0]
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i else []
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(width, c, 3, padding=1), make_activation(activation)]
                width = c
            self.stages.append(nn.Sequential(*layers))
            self.scores.append(nn.Conv2d(c, 1, 1))

    def logits(self, batch: dict[str, Tensor]) -> Tensor:
        """The fused score map ``s_0`` (B, H, W): one logit per pixel (module docstring)."""
        x = checked_condition(self.kind, self.data, batch)
        scores = []
        for stage, score in zip(self.stages, self.scores, strict=True):
            x = stage(x)
            scores.append(score(x))
        fused = scores.pop()
        while scores:
            fused = scores.pop() + F.interpolate(fused, scale_factor=2, mode="bilinear", align_corners=False)
        return fused[:, 0]

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The mean binary cross-entropy over pixels against ``batch[labels]`` (module docstring)."""
        logits = self.logits(batch)
        labels = batch.get(self.labels)
        if labels is None or tuple(labels.shape) != tuple(logits.shape):
            got = None if labels is None else tuple(labels.shape)
            raise ShapeError(
                f"{self.kind}: labels {self.labels!r} must have shape {tuple(logits.shape)} (B, H, W), got {got}"
                + ("" if labels is not None else f"; the batch holds {sorted(batch)}")
            )
        bce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return {"loss": bce, "bce": bce.detach()}

    def predict(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float | None = None,
                prefix: int | None = None, horizon: int | None = None) -> Tensor:
        """``sigmoid(logit) - target_offset`` on every target channel, (B, C, H, W); deterministic."""
        self.refuse_sequence_options("predict", prefix, horizon)
        self.check_samples("predict", samples)
        p = self.logits(batch).sigmoid() - self.target_offset
        return p[:, None].expand(-1, self.data.target_shape[0], -1, -1)

    def sample(self, batch: dict[str, Tensor], samples: int | None = None, temperature: float = 1.0,
               prefix: int | None = None, horizon: int | None = None) -> Tensor:
        raise NotImplementedError(f"{self.kind} is deterministic: it has no distribution to sample (use predict)")
