"""Task ``particles``: three interacting particles (dNRI's "small synth"), the future states of
all three from a burn-in of past ones.

Follows MotionFlow (Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391; motionflow.txt
section 5, table 2), which uses the data dNRI (Graber & Schwing, CVPR 2020) ships, and the
protocol page ``../shared/protocols/motionflow_particles_exchange.md``.

- **Simulator** (:func:`simulate`, generated from ``seed``; nothing is stored in the repository):
  per sequence, drawn in this order from one ``numpy.random.RandomState(seed)`` (train, then
  validation, then test sequences): p1's position ~ U(-2, -1)^2 and velocity ~ U(0.05, 0.1)^2,
  p2's ~ U(1, 2)^2 and U(-0.1, -0.05)^2, p3's ~ U(-1, 1)^2 and U(-0.05, 0.05)^2. State 0 is
  the drawn one; each step first pushes p3 away from p1 and p2: for i in (1, 2), if
  ``d = ||p3 - p_i|| < 1`` then ``v3 += 0.05 (1 - d) (p3 - p_i) / d`` (p1 and p2 are never
  pushed and move at constant velocity), then moves every particle by its velocity. A sequence
  records ``steps`` states (default 50) of 4 features (x, y, vx, vy) per particle.
- **Normalisation** (NRI's and dNRI's): positions and velocities min-max scaled to [-1, 1],
  ``2 (v - min) / (max - min) - 1``, with one (min, max) for the positions (both coordinates,
  every particle) and one for the velocities, over every state of the ``train`` split; the
  metrics are in these normalised units (as table 2's).
- **Windows**: ``burn_in`` b (default 25; 10 is the paper's text, 25 fits its table's
  magnitudes: the protocol page asks for both, so every metric is labelled with it) input
  states and ``output_frames`` T (default 25) predicted ones. ``validation`` and ``test``: one
  window per sequence, states 0 .. b-1 in, b .. b+T-1 out (needs b + T <= ``steps``).
  ``train``: every window of b + T states at stride ``train_stride`` (1) of each training
  sequence (b = T = 25 of 50 steps: one per sequence).
- **Training jitter** (``train_noise``, default 1e-3 in normalised units; :mod:`eddies.tasks.windows`):
  the dynamics are deterministic and p1's and p2's velocities never change, so the exact
  training states have no finite density; the training split's states get N(0, 1e-3^2) noise,
  redrawn every epoch (seeded by ``noise_seed`` and the epoch). Validation and test are exact.
  (Table 2's MSE at step 1 is about 1.5e-5, an error of 4e-3: the jitter is below it.)
- **Batch**: ``x`` (b, 4, 3) and ``y`` (T, 4, 3), normalised: channels the features (x, y, vx,
  vy), height time, width the 3 particles (MotionFlow's layout); ``sequence`` () the index of
  the window's sequence in its split.
- **Metrics** (:meth:`Particles.evaluate`, ``model.predict(batch, samples=M, temperature=t)``,
  options ``samples`` default 10 and ``temperature`` default None): ``mse_burn_in_<b>_step_<k>``
  for every predicted step k = 1..T, the mean over windows, particles and features of the
  squared error at step k; ``mse_burn_in_<b>_mean`` over all T steps; and ``mse_mean`` (the same
  number without the label, for ``train.monitor`` whatever the burn-in). All are minimised.
- **Picture** (:meth:`Particles.save_samples`): the x-y trajectories of a few test sequences,
  input, truth and prediction.

Example (a few sequences, a temporary cache)::

    >>> import tempfile
    >>> task = Particles(data_dir=tempfile.mkdtemp(), sizes={"train": 4, "validation": 2, "test": 2})
    >>> task.prepare()
    >>> item = task.dataset("test")[0]
    >>> item["x"].shape, item["y"].shape, float(task.dataset("train")[0]["x"].abs().max()) <= 1.0
    (torch.Size([25, 4, 3]), torch.Size([25, 4, 3]), True)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.core import ComponentConfig, DataError, DataSpec, RecipeError, ShapeError, Task, register
from eddies.tasks.cache import SPLITS, ArrowCache, Count, cache_key, check_split
from eddies.tasks.prediction import device_of, prediction_options
from eddies.tasks.windows import Windows, gaussian

PARTICLES, FEATURES = 3, 4  # features: x, y, vx, vy
POSITION_RANGES = ((-2.0, -1.0), (1.0, 2.0), (-1.0, 1.0))  # p1, p2, p3: U(a, b)^2
VELOCITY_RANGES = ((0.05, 0.1), (-0.1, -0.05), (-0.05, 0.05))
PUSH_RADIUS, PUSH_STRENGTH = 1.0, 0.05
REPORTED_STEPS: tuple[int, ...] = (1, 15, 25)  # table 2's prediction steps
CACHE_FORMAT = 2  # bump when the simulator or the cached layout changes
GENERATOR = "dnri-small-synth-v1"  # names the simulator in the cache key


def simulate(rng: np.random.RandomState, sequences: int, steps: int) -> np.ndarray:
    """``sequences`` trajectories of ``steps`` states, (N, steps, 3, 4) float64 (module docstring)."""
    state = np.zeros((sequences, PARTICLES, FEATURES))
    for n in range(sequences):  # the draw order of the module docstring
        for p in range(PARTICLES):
            state[n, p, :2] = rng.uniform(*POSITION_RANGES[p], size=2)
            state[n, p, 2:] = rng.uniform(*VELOCITY_RANGES[p], size=2)
    out = np.empty((sequences, steps, PARTICLES, FEATURES))
    out[:, 0] = state
    for t in range(1, steps):
        position, velocity = state[..., :2].copy(), state[..., 2:].copy()
        for i in (0, 1):
            offset = position[:, 2] - position[:, i]
            d = np.linalg.norm(offset, axis=-1, keepdims=True)
            near = d < PUSH_RADIUS
            push = PUSH_STRENGTH * (1 - d) * offset / np.where(near, d, 1.0)
            velocity[:, 2] += np.where(near, push, 0.0)
        state = np.concatenate([position + velocity, velocity], axis=-1)
        out[:, t] = state
    return out


def min_max(train: np.ndarray) -> dict[str, float]:
    """One (min, max) for the positions and one for the velocities of (N, T, 3, 4) states."""
    return {"position_min": float(train[..., :2].min()), "position_max": float(train[..., :2].max()),
            "velocity_min": float(train[..., 2:].min()), "velocity_max": float(train[..., 2:].max())}


def normalise(states: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    """``2 (v - min) / (max - min) - 1`` with the positions' and the velocities' ranges."""
    low = np.array([stats["position_min"]] * 2 + [stats["velocity_min"]] * 2)
    high = np.array([stats["position_max"]] * 2 + [stats["velocity_max"]] * 2)
    return 2 * (states - low) / (high - low) - 1


class ParticlesConfig(ComponentConfig):
    sizes: dict[Literal["train", "validation", "test"], Count] = Field(
        {"train": 100, "validation": 100, "test": 100}, description="sequences per split (dNRI: 100 each)")
    steps: int = Field(50, ge=2, description="states per sequence")
    seed: int = Field(1, ge=0, description="numpy seed of the simulator (dNRI: 1)")
    burn_in: int = Field(25, ge=2, description="input states b (the paper's text: 10; its table fits 25)")
    output_frames: int = Field(25, ge=1, description="predicted states T")
    train_stride: int = Field(1, ge=1, description="stride of the training windows")
    train_noise: float = Field(1e-3, ge=0.0, description="std of the training states' jitter, normalised units (0: off)")
    noise_seed: int = Field(0, ge=0, description="seed of that jitter")


@register(
    "tasks", "particles", version=1, config=ParticlesConfig,
    summary="Three interacting particles (dNRI small synth): future states from a burn-in (MotionFlow table 2).",
)
class Particles(Task):
    """Interacting particles; see the module docstring for the simulator, windows and metrics."""

    def __init__(self, data_dir: Path | str | None = None, sizes: dict[str, int] | None = None, steps: int = 50,
                 seed: int = 1, burn_in: int = 25, output_frames: int = 25, train_stride: int = 1,
                 train_noise: float = 1e-3, noise_seed: int = 0):
        super().__init__(data_dir)
        self.sizes = {"train": 100, "validation": 100, "test": 100, **(sizes or {})}
        unknown = set(self.sizes) - set(SPLITS)
        if unknown:
            raise RecipeError(f"particles: unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}",
                              "task.sizes")
        if self.sizes["train"] < 1:
            raise RecipeError("particles: the training split needs at least one sequence", "task.sizes.train")
        self.steps, self.seed = int(steps), int(seed)
        self.burn_in, self.output_frames, self.train_stride = int(burn_in), int(output_frames), int(train_stride)
        self.train_noise, self.noise_seed = float(train_noise), int(noise_seed)
        if self.burn_in + self.output_frames > self.steps:
            raise RecipeError(f"particles: burn_in + output_frames = {self.burn_in + self.output_frames} exceeds "
                              f"the {self.steps} steps of a sequence", "task.output_frames")
        self._cache: ArrowCache | None = None
        self._stats: dict[str, float] | None = None

    # data ---------------------------------------------------------------------------------
    def _arrow(self) -> ArrowCache:
        if self._cache is None:
            settings = {"sizes": {s: self.sizes[s] for s in SPLITS}, "steps": self.steps, "seed": self.seed}
            source = hashlib.sha256(GENERATOR.encode()).hexdigest()
            self._cache = ArrowCache("particles", self.data_dir / "particles" / cache_key(source, settings, CACHE_FORMAT))
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/particles/<key>``, the key hashing the simulator's name, sizes, steps and seed."""
        return self._arrow().path

    def prepare(self) -> None:
        """Simulate every split from the seed into the Arrow cache once."""
        self._arrow().build(self._convert)

    def _convert(self) -> dict[str, Any]:
        import datasets

        rng = np.random.RandomState(self.seed)
        raw = {split: simulate(rng, self.sizes[split], self.steps) for split in SPLITS}
        stats = min_max(raw["train"])
        features = datasets.Features({"states": datasets.Sequence(datasets.Value("float64"))})
        splits = {}
        for split in SPLITS:
            info = datasets.DatasetInfo(description=json.dumps(stats) if split == "train" else "", features=features)
            splits[split] = datasets.Dataset.from_dict(
                {"states": [s.reshape(-1) for s in raw[split]]}, features=features, info=info)
        return splits

    def states(self, split: str) -> np.ndarray:
        """The split's raw states (N, steps, 3, 4) float64 (prepares if needed)."""
        check_split("particles", split)
        if not self._arrow().ready():
            self.prepare()
        column = self._arrow().split(split).data.column("states").combine_chunks().flatten()
        values = column.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, self.steps, PARTICLES, FEATURES)
        if len(values) != self.sizes[split]:
            raise DataError(f"particles: the cache {self._arrow().path} holds {len(values)} {split} sequences, "
                            f"expected {self.sizes[split]}; delete that folder to rebuild it")
        return values

    @property
    def statistics(self) -> dict[str, float]:
        """The training split's position and velocity ranges (module docstring)."""
        if self._stats is None:
            self.states("train")
            self._stats = json.loads(self._arrow().split("train").info.description)
        return dict(self._stats)

    def dataset(self, split: str) -> Windows:
        """The split's windows (module docstring) as a map-style dataset of ``x``, ``y``, ``sequence``."""
        states = normalise(self.states(split), self.statistics)
        frames = torch.from_numpy(states.transpose(0, 1, 3, 2))  # (N, steps, 4, 3)
        stride = self.train_stride if split == "train" else self.steps  # one window per sequence
        starts = torch.arange(0, self.steps - self.burn_in - self.output_frames + 1, stride)
        windows = torch.cartesian_prod(torch.arange(len(frames)), starts).reshape(-1, 2)  # sequence-major
        jitter = gaussian(self.train_noise) if split == "train" and self.train_noise > 0 else None
        return Windows(frames, windows, self.burn_in, self.output_frames, {"sequence": windows[:, 0]},
                       jitter, self.noise_seed)

    def data_spec(self) -> DataSpec:
        frame = (FEATURES, PARTICLES)
        return DataSpec({"x": (self.burn_in, *frame), "y": (self.output_frames, *frame), "sequence": ()})

    # metrics ------------------------------------------------------------------------------
    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        b = self.burn_in
        names = [f"mse_burn_in_{b}_step_{k}" for k in range(1, self.output_frames + 1)]
        return dict.fromkeys([*names, f"mse_burn_in_{b}_mean", "mse_mean"], "min")

    def _predict(self, model: nn.Module, batch: dict[str, Tensor], samples: int, temperature: float | None) -> Tensor:
        pred = model.predict(batch, samples=samples, temperature=temperature)
        expected = (len(batch["y"]), *self.data_spec().shapes["y"])
        if tuple(pred.shape) != expected:
            raise ShapeError(f"particles: a prediction must have shape (B, T, 4, 3) = {expected}, got {tuple(pred.shape)}")
        return pred

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        """MSE per predicted step of ``model.predict`` over ``loader`` (module docstring)."""
        samples, temperature = prediction_options("particles", "evaluate", options, None)
        device, total, count = device_of(model), torch.zeros(self.output_frames, dtype=torch.float64), 0
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                error = (self._predict(model, batch, samples, temperature).double() - batch["y"].double()) ** 2
                total += error.mean((2, 3)).sum(0).cpu()
                count += len(error)
        finally:
            model.train(was_training)
        if count == 0:
            raise DataError("particles.evaluate: the loader yielded no windows")
        curve, b = total / count, self.burn_in
        metrics = {f"mse_burn_in_{b}_step_{k + 1}": curve[k].item() for k in range(self.output_frames)}
        metrics[f"mse_burn_in_{b}_mean"] = metrics["mse_mean"] = curve.mean().item()
        return metrics

    # pictures -----------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self, model: nn.Module, path: Path | str, n: int = 4, temperature: float | None = None,
                     **options: Any) -> Path:
        """A PNG of ``n`` test sequences: each particle's x-y path, input (grey), truth (solid)
        and prediction (dashed). Options: ``samples`` (default 10) of ``model.predict``."""
        from matplotlib.figure import Figure

        samples, temperature = prediction_options("particles", "save_samples",
                                                  {**options, "temperature": temperature}, None)
        data = self.dataset("test")
        rows = list(range(min(max(int(n), 1), len(data))))
        if not rows:
            raise DataError("particles.save_samples: the test split has no sequences")
        device = device_of(model)
        batch = {k: v.to(device) for k, v in data.batch(rows).items()}
        was_training = model.training
        model.eval()
        try:
            pred = self._predict(model, batch, samples, temperature).cpu()
        finally:
            model.train(was_training)
        figure = Figure(figsize=(2.6 * len(rows), 2.8), layout="constrained")
        axes = figure.subplots(1, len(rows), squeeze=False)[0]
        colours = ("tab:blue", "tab:orange", "tab:green")
        for ax, r in zip(axes, rows, strict=True):
            for p in range(PARTICLES):
                past, truth = batch["x"][r, :, :2, p].cpu(), batch["y"][r, :, :2, p].cpu()
                ax.plot(past[:, 0], past[:, 1], color="0.6", linewidth=1)
                ax.plot(truth[:, 0], truth[:, 1], color=colours[p], linewidth=1.2, label=f"p{p + 1}")
                ax.plot(pred[r, :, 0, p], pred[r, :, 1, p], color=colours[p], linestyle="--", linewidth=1.2)
            ax.set_title(f"test sequence {r}", fontsize=7)
            ax.set_aspect("equal", adjustable="datalim"), ax.tick_params(labelsize=6)
        axes[0].legend(fontsize=6)
        figure.suptitle(f"particles (burn-in {self.burn_in}): input (grey), truth (solid), prediction (dashed)",
                        fontsize=8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        return path
