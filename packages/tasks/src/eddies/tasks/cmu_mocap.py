"""Task ``cmu_mocap``: human motion prediction on CMU mocap, 25 future poses from 25 past ones.

Follows MotionFlow (Zand, Etemad & Greenspan, "Flow-based Spatio-Temporal Structured Prediction
of Motion Dynamics", IEEE TPAMI 2023, arXiv:2104.04391; motionflow.txt section 5.3, tables 3
and 7) and the protocol page
``../shared/protocols/motionflow_cmu.md``; positions and the skeleton are
:mod:`eddies.tasks.cmu_skeleton`.

- **Source** (setting ``source``): the Li et al. (CVPR 2018) preparation,
  ``train/<action>/<action>_<n>.txt.gz`` and ``test/<action>/<action>_<n>.txt.gz``, one frame per
  line at 50 fps, 117 comma-separated values: [0:3] the root's translation (dropped), then 38
  joints x 3 exponential-map components (joint 0 the root's rotation). By default the first
  ``shared/data/cmu_mocap`` in the current directory, its parents or beside this package's
  source tree (as ``weizmann_horse``). Files are found by globbing and ordered by the number
  ``n`` (never assumed to be 1..k). A file that is not gzip, not numbers, not 117 columns or
  not finite is a :class:`~eddies.core.DataError` naming it.
- **Actions** (setting ``actions``, default basketball and walking, the paper's table 3): an
  action is *complete* when it has at least two training files and a test file; another one is
  a :class:`~eddies.core.RecipeError` at ``task.actions`` listing the complete ones. (Two, not
  one: the validation split below holds one out. The set's basketball, walking, running,
  jumping and soccer have five each.)
- **Splits**: ``train`` the training files but the highest-numbered of each action, which is
  the ``validation`` split (held out: the authors evaluate on the test set, protocol page
  "where the code differs" 6, so there is no published validation split); ``test`` the
  test files.
- **Frame rate**: 50 -> 25 fps by ``frames[::2]`` (as LTD's ``load_data_cmu``).
- **Representation** (a frame): the exp maps of the 24 joints :data:`~eddies.tasks.cmu_skeleton.KEPT_JOINTS`
  (MotionFlow's code; joint 0, the root rotation, included, the root translation dropped) laid
  out as (3, 24): channels the exp-map components, width the joints. Normalised per (component,
  joint), ``(v - mean) / std``, with the mean and the population standard deviation (ddof 0) of
  every 25 fps frame of the ``train`` split (never validation or test frames); a standard
  deviation below :data:`STD_FLOOR` (a channel that barely moves) is replaced by 1, so the
  channel is only centred. Such a *static* channel (20 of the 72 for basketball and walking:
  joints with fewer than three degrees of freedom in this skeleton) is constant, and a
  constant has no density: a flow fitted to it shrinks it without end, the NLL falls without
  bound and its gradient swamps the moving channels'. So the task gives the static channels of
  ``x`` and ``y`` a Gaussian jitter of standard deviation ``static_noise`` (default 1e-3, in
  radians, since their scale is 1; 0 turns it off), drawn per frame of the split's sequences so
  overlapping windows agree, from a generator seeded by (``noise_seed``, split, epoch): the
  training split draws it afresh each epoch (the engine calls ``set_epoch``; a fixed draw
  would let a model memorise the training jitter, a density gain that does not generalise),
  validation and test keep the draw of epoch 0.
  ``y_raw`` and ``x_last_raw``, the metrics' truth, stay exact; a prediction of a static
  channel is then within about 1e-3 rad of its constant, which moves no joint by more than
  0.5 mm. The statistics are computed once, stored with the Arrow cache as
  JSON (the train split's ``dataset_info.json`` description, covered by the cache's
  checksums) and exposed as :attr:`CMUMocap.mean` and :attr:`CMUMocap.std`, tensors (3, 24).
- **Cache** (:mod:`eddies.tasks.cache`): ``data_dir/cmu_mocap/<key>``, the key hashing the
  names and bytes of every file of the chosen actions and the ``actions`` setting. It holds
  each file's 25 fps sequence once (38 x 3 exp maps per frame, float32) with its action, number
  and raw (50 fps) length; windows are index arithmetic on those sequences at
  :meth:`CMUMocap.dataset` time, so ``input_frames``, ``output_frames``, ``train_stride``,
  ``protocols`` and ``limit`` never rebuild the cache.
- **Batch** (every split the same keys, :meth:`CMUMocap.data_spec`): ``x`` (T_in, 3, 24) the
  normalised input window (the condition), ``y`` (T_out, 3, 24) the normalised future (the
  target), ``y_raw`` (T_out, 38, 3) the future's raw exp maps of all 38 joints, ``x_last_raw``
  (38, 3) those of the last input frame, ``action`` () the index into ``actions``,
  ``protocol`` () the index into ``protocols`` (0 in ``train``); T_in = ``input_frames``
  (default 25), T_out = ``output_frames`` (default 25).
- **Windows** (of input + output frames, L = T_in + T_out; positions on the 25 fps sequence of
  a file with R raw frames and n = len(frames[::2]) frames, :func:`window_starts`):

  - ``train``: every window starting at 0, s, 2s, ... (s = ``train_stride``, default 1: every
    position, as MotionFlow's training crops a 2 s window at a random frame of its 3 s sequences).
  - ``motionflow`` (MotionFlow's test protocol): every 150-raw-frame window at raw stride 10
    (raw starts 0, 10, ..., while start + 150 <= R); of each its first 2 L raw frames at 25 fps
    (the first 100: 25 input + 25 output), i.e. 25 fps start 5 j. Needs L <= 75.
  - ``ltd8`` (LTD's ``load_data_cmu`` test windows): per file a fresh
    ``numpy.random.RandomState(1234567890)`` draws 8 values one after another,
    ``idx = rng.randint(0, n - 75)`` (upper bound excluded), one per window; the output is
    frames idx + 50 .. idx + 50 + T_out - 1 and the input the T_in frames before it
    (idx + 25 .. idx + 49 for 25 input frames; LTD itself uses 10, idx + 40 .. idx + 49). The
    draw range stays LTD's n - 75 for a shorter T_out too (so the windows do not move; one
    later copy of that reader draws from n - 50 - T_out instead). Needs T_in <= 50,
    T_out <= 25 and n > 75 (a shorter file is a DataError naming it).
  - ``all`` (MSR-GCN's): every window at stride 1.

  ``protocols`` (default motionflow and ltd8) chooses the windows of both the validation and
  the test split; their items say which protocol they belong to. ``limit`` (split -> N) keeps
  the first N windows of each action (and protocol) of a split, in file and position order.
- **Prediction and metrics** (:meth:`CMUMocap.evaluate`): ``model.predict(batch,
  samples=M, temperature=t)`` (options ``samples``, default 10, and ``temperature``, default
  None: the model's own) gives (B, T_out, 3, 24) in the normalised space; it is
  de-normalised and written into the kept joints of the true exp maps ``y_raw``, so the 14
  joints the model does not predict are the truth (as LTD evaluates its ignored dimensions).
  Unlike LTD's, five of them move in this data (joints 24, 27, 32, 33 and 36 of the hands,
  std up to 0.8 rad), but they only turn short end bones: holding them at the last input
  frame instead changes zero velocity's test MPJPE by less than 0.1 mm (measured at 80, 400
  and 1000 ms).
  For each protocol p, action a and horizon h in :data:`HORIZONS_MS` (output frame h / 40 ms,
  those within T_out): ``mpjpe_<p>_<a>_<h>ms`` the mean over windows and the 38 joints of the
  3-D position error in millimetres after forward kinematics (:func:`~eddies.tasks.cmu_skeleton.mpjpe`),
  ``mpjpe_<p>_mean_<h>ms`` its mean over the actions, ``angle_error_<p>_<a>_<h>ms`` MotionFlow's
  code's error (:func:`~eddies.tasks.cmu_skeleton.axis_angle_error`: the mean Euclidean distance
  of axis-angle vectors, in radians; not a position error, whatever that code calls it) and
  ``mpjpe_<p>_<a>_avg`` the MPJPE averaged over all T_out output frames (for monitoring). All
  are minimised; a protocol and action without windows in the loader gives NaN. ``log_prob``
  is never called: a model with only ``predict`` (zero velocity) is enough.
- **Pictures**: :meth:`CMUMocap.save_samples` draws test windows as stick figures (input,
  truth and prediction); :func:`plot_mpjpe_curves` draws MPJPE against the horizon from
  ``evaluate``'s dict (or several, labelled).
- **A property of the data**: the first line of every file (all 38 of the set) is not a
  captured pose but one and the same near-rest pose (7 of the 114 angles non-zero, at most
  0.37 rad; a T-pose); the capture starts on the second line. It is kept (as LTD's reader
  keeps it; the window positions above count it), so each file's first window under
  ``train``, ``motionflow`` and ``all`` begins with one such frame.

Example (the real files, a few windows, a temporary cache)::

    >>> import tempfile
    >>> task = CMUMocap(data_dir=tempfile.mkdtemp(), limit={"train": 2, "validation": 1, "test": 1})
    >>> task.prepare()
    >>> item = task.dataset("test")[0]
    >>> item["x"].shape, item["y"].shape, item["y_raw"].shape, task.std.shape
    (torch.Size([25, 3, 24]), torch.Size([25, 3, 24]), torch.Size([25, 38, 3]), torch.Size([3, 24]))
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate

from eddies.core import ComponentConfig, DataError, DataSpec, RecipeError, ShapeError, Task, register
from eddies.tasks.cache import (
    SPLITS,
    ArrowCache,
    Count,
    cache_key,
    check_limit,
    check_split,
    shared_data_folder,
    source_folder,
)
from eddies.tasks.cmu_skeleton import KEPT_JOINTS, PARENTS, axis_angle_error, forward_kinematics, mpjpe
from eddies.tasks.numpy_pickle import gunzip
from eddies.tasks.prediction import device_of, prediction_options

Split = Literal["train", "validation", "test"]
Protocol = Literal["motionflow", "ltd8", "all"]
PROTOCOLS: tuple[str, ...] = ("motionflow", "ltd8", "all")
RAW_FPS, FPS = 50, 25  # the files' rate and the task's (frames[::2])
VALUES = 117  # per line: 3 root translation + 38 joints x 3 exp-map components
JOINTS = 38
COMPONENTS = 3
HORIZONS_MS: tuple[int, ...] = (80, 160, 320, 400, 560, 1000)  # output frames 2, 4, 8, 10, 14, 25
FRAME_MS = 1000 // FPS  # 40 ms
PICTURE_MS: tuple[int, ...] = (80, 320, 560, 1000)  # the output frames save_samples draws
CURVE_KEY = re.compile(r"^mpjpe_(?P<protocol>motionflow|ltd8|all)_(?P<action>.+)_(?P<ms>\d+)ms$")
STD_FLOOR = 1e-4  # a (component, joint) standard deviation below it is replaced by 1 (a static channel)
MOTIONFLOW_RAW_WINDOW, MOTIONFLOW_RAW_STRIDE = 150, 10  # raw (50 fps) frames
LTD_SEED, LTD_WINDOWS, LTD_INPUT, LTD_OUTPUT = 1234567890, 8, 50, 25  # LTD load_data_cmu, is_test
MAX_FILE_BYTES = 1 << 28  # the most one source file may decompress to (the largest holds 3 MB)
CACHE_FORMAT = 2  # bump when the cached layout or the preprocessing changes
SOURCE_HINT = "set task.source=PATH to a folder holding train/<action>/<action>_<n>.txt.gz and test/..."
FILE_NAME = re.compile(r"^(?P<action>.+)_(?P<number>\d+)\.txt\.gz$")


def default_source() -> Path | None:
    """The first ``shared/data/cmu_mocap`` folder (:func:`eddies.tasks.cache.shared_data_folder`), or None."""
    return shared_data_folder("cmu_mocap")


def action_files(source: Path, part: str, action: str) -> list[tuple[int, Path]]:
    """(number, path) of ``source/part/action/action_<n>.txt.gz`` by globbing, sorted by n."""
    found = []
    for path in (source / part / action).glob(f"{action}_*.txt.gz"):
        match = FILE_NAME.match(path.name)
        if match and match["action"] == action:
            found.append((int(match["number"]), path))
    return sorted(found)


def complete_actions(source: Path) -> list[str]:
    """The actions with at least two training files (one is held out) and a test file, sorted."""
    names = {p.name for p in (source / "train").iterdir() if p.is_dir()} if (source / "train").is_dir() else set()
    return sorted(a for a in names if len(action_files(source, "train", a)) >= 2 and action_files(source, "test", a))


def parse_frames(path: Path, data: bytes) -> np.ndarray:
    """A gzip source file's bytes -> its 38 joints' exp maps (R, 38, 3) float64 at 50 fps."""
    text = gunzip(data, str(path), MAX_FILE_BYTES)
    try:
        values = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path}: not lines of {VALUES} comma-separated numbers ({error})") from None
    if values.shape[0] == 0 or values.shape[1] != VALUES:
        raise DataError(f"{path}: expected lines of {VALUES} values, got an array of shape {values.shape}")
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0, 0])
        raise DataError(f"{path}: line {row + 1} holds a non-finite value")
    return values[:, 3:].reshape(-1, JOINTS, COMPONENTS)


def kept(frames: np.ndarray) -> np.ndarray:
    """(..., 38, 3) exp maps -> (..., 3, 24): the kept joints, channels the components."""
    return np.swapaxes(frames[..., list(KEPT_JOINTS), :], -1, -2)


def statistics(frames: np.ndarray) -> dict[str, Any]:
    """Mean and floored population std per (component, joint) of (N, 38, 3) training frames."""
    if len(frames) == 0:
        raise DataError("cmu_mocap: the training split has no frames to compute the normalisation from")
    values = kept(frames.astype(np.float64))
    mean, std = values.mean(axis=0), values.std(axis=0)
    static = std < STD_FLOOR
    return {"mean": mean.tolist(), "std": np.where(static, 1.0, std).tolist(), "static": static.tolist(),
            "frames": len(frames), "std_floor": STD_FLOOR}


def window_starts(
    protocol: str, raw_frames: int, input_frames: int, output_frames: int, stride: int = 1
) -> np.ndarray:
    """Input start positions (int64) on a file's 25 fps sequence under ``protocol`` (module docstring).

    ``protocol`` is ``"train"`` (stride ``stride``), ``"motionflow"``, ``"ltd8"`` or ``"all"``;
    ``raw_frames`` the file's number of 50 fps frames R (the sequence has n = ceil(R / 2)).
    """
    n, length = (raw_frames + 1) // 2, input_frames + output_frames
    if protocol == "train":
        return np.arange(0, max(n - length + 1, 0), stride, dtype=np.int64)
    if protocol == "all":
        return np.arange(0, max(n - length + 1, 0), dtype=np.int64)
    if protocol == "motionflow":
        count = max((raw_frames - MOTIONFLOW_RAW_WINDOW) // MOTIONFLOW_RAW_STRIDE + 1, 0)
        return np.arange(count, dtype=np.int64) * (MOTIONFLOW_RAW_STRIDE // 2)
    if protocol == "ltd8":
        rng = np.random.RandomState(LTD_SEED)  # fresh per file; 8 successive draws
        total = LTD_INPUT + LTD_OUTPUT
        idx = np.array([rng.randint(0, n - total) for _ in range(LTD_WINDOWS)], dtype=np.int64)
        return idx + LTD_INPUT - input_frames
    raise ValueError(f"unknown protocol {protocol!r}")


@dataclass(frozen=True)
class SourceFile:
    split: str
    action: int
    number: int
    path: Path
    data: bytes


class CMUMocapConfig(ComponentConfig):
    source: str | None = Field(
        None, description="folder with train/ and test/ (default: the first shared/data/cmu_mocap in the "
        "current directory, its parents, or beside the repository)",
    )
    actions: list[str] = Field(
        ["basketball", "walking"], min_length=1,
        description="actions to use, each with two or more training files and a test file",
    )
    input_frames: int = Field(25, ge=1, description="input window T_in at 25 fps (1 s)")
    output_frames: int = Field(25, ge=1, description="predicted frames T_out at 25 fps (1 s)")
    train_stride: int = Field(1, ge=1, description="stride of the training windows, in 25 fps frames")
    protocols: list[Protocol] = Field(
        ["motionflow", "ltd8"], min_length=1,
        description="test protocols of the validation and test windows: motionflow, ltd8, all",
    )
    limit: dict[Split, Count] | None = Field(
        None, description="keep the first N windows of each action and protocol of these splits (tests, quick runs)"
    )
    static_noise: float = Field(1e-3, ge=0.0, description="std of the fixed jitter of the static (constant) channels")
    noise_seed: int = Field(0, ge=0, description="seed of that jitter")

    @field_validator("actions", "protocols")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"each name at most once, got {value}")
        return value


@register(
    "tasks", "cmu_mocap", version=1, config=CMUMocapConfig,
    summary="CMU mocap motion prediction: 25 future poses (24 joints' exp maps) given 25 past ones (MotionFlow).",
)
class CMUMocap(Task):
    """CMU mocap motion prediction; see the module docstring for data, windows and metrics."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        source: str | None = None,
        actions: Sequence[str] = ("basketball", "walking"),
        input_frames: int = 25,
        output_frames: int = 25,
        train_stride: int = 1,
        protocols: Sequence[str] = ("motionflow", "ltd8"),
        limit: dict[str, int] | None = None,
        static_noise: float = 1e-3,
        noise_seed: int = 0,
    ):
        super().__init__(data_dir)
        self.source = Path(source).expanduser() if source is not None else None
        self.actions = list(actions)
        self.input_frames, self.output_frames = int(input_frames), int(output_frames)
        self.train_stride = int(train_stride)
        self.protocols = list(protocols)
        self.limit = check_limit("cmu_mocap", limit)
        self.static_noise, self.noise_seed = float(static_noise), int(noise_seed)
        self._check_settings()
        self._cache: ArrowCache | None = None
        self._stats: dict[str, Any] | None = None

    def _check_settings(self) -> None:
        if not self.actions or len(set(self.actions)) != len(self.actions):
            raise RecipeError(f"cmu_mocap: actions must be distinct names, at least one; got {self.actions}",
                              "task.actions")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols or len(set(self.protocols)) != len(self.protocols):
            raise RecipeError(f"cmu_mocap: protocols must be distinct names among {', '.join(PROTOCOLS)}; "
                              f"got {self.protocols}", "task.protocols")
        length = self.input_frames + self.output_frames
        if "motionflow" in self.protocols and 2 * length > MOTIONFLOW_RAW_WINDOW:
            raise RecipeError(f"cmu_mocap: protocol motionflow takes windows of {MOTIONFLOW_RAW_WINDOW} raw frames, "
                              f"so input_frames + output_frames must be at most {MOTIONFLOW_RAW_WINDOW // 2} at "
                              f"25 fps, got {length}", "task.protocols")
        if "ltd8" in self.protocols and (self.input_frames > LTD_INPUT or self.output_frames > LTD_OUTPUT):
            raise RecipeError(f"cmu_mocap: protocol ltd8 takes at most {LTD_INPUT} input and {LTD_OUTPUT} output "
                              f"frames, got {self.input_frames} and {self.output_frames}", "task.protocols")

    # data ---------------------------------------------------------------------------------
    def source_dir(self) -> Path:
        """The source folder (the setting, or :func:`default_source`); a DataError if absent."""
        self.source = source_folder("cmu_mocap", self.source, "cmu_mocap", ("train", "test"), SOURCE_HINT)
        return self.source

    def _files(self) -> list[tuple[str, int, int, Path]]:
        """(split, action index, number, path) of every file used, in split, action, number order."""
        source = self.source_dir()
        incomplete = [a for a in self.actions
                      if len(action_files(source, "train", a)) < 2 or not action_files(source, "test", a)]
        if incomplete:
            complete = complete_actions(source)
            raise RecipeError(
                f"cmu_mocap: action(s) {', '.join(incomplete)} lack two or more training files or a test file "
                f"in {source}; the complete actions are: {', '.join(complete) or 'none'}", "task.actions",
            )
        files = []
        for a, action in enumerate(self.actions):
            train = action_files(source, "train", action)
            files += [("train", a, n, p) for n, p in train[:-1]]
            files.append(("validation", a, *train[-1]))  # the highest-numbered training file
            files += [("test", a, n, p) for n, p in action_files(source, "test", action)]
        order = {s: i for i, s in enumerate(SPLITS)}
        return sorted(files, key=lambda f: (order[f[0]], f[1], f[2]))

    def _read_source(self) -> tuple[str, list[SourceFile]]:
        """The bytes of every file used and their SHA-256 (names and contents, in file order)."""
        digest = hashlib.sha256()
        files = []
        for split, action, number, path in self._files():
            data = path.read_bytes()
            digest.update(f"{split}/{path.parent.parent.name}/{path.name}:{len(data)}:".encode())
            digest.update(data)
            files.append(SourceFile(split, action, number, path, data))
        return digest.hexdigest(), files

    def _arrow(self, source_sha256: str | None = None) -> ArrowCache:
        """The cache keyed by the files' SHA-256 and ``actions`` (their order sets the indices)."""
        if self._cache is None:
            digest = source_sha256 or self._read_source()[0]
            key = cache_key(digest, {"actions": self.actions}, CACHE_FORMAT)
            self._cache = ArrowCache("cmu_mocap", self.data_dir / "cmu_mocap" / key)
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/cmu_mocap/<key>``: the key hashes the files' names and bytes and ``actions``."""
        return self._arrow().path

    def prepare(self) -> None:
        """Convert the source once into the Arrow cache (:meth:`eddies.tasks.cache.ArrowCache.build`).

        Every file used is read and hashed each time (2 MB for basketball and walking), so a
        changed file gives a new cache; parsing happens only on a cache miss.
        """
        source_sha256, files = self._read_source()
        self._cache, self._stats = None, None  # the files may have changed since the last call
        self._arrow(source_sha256).build(lambda: self._convert(files))

    def _convert(self, files: list[SourceFile]) -> dict[str, Any]:
        import datasets

        features = datasets.Features({
            "action": datasets.Value("int64"), "number": datasets.Value("int64"),
            "raw_frames": datasets.Value("int64"), "frames": datasets.Sequence(datasets.Value("float32")),
        })
        splits, stats = {}, None
        for split in SPLITS:
            rows = [(f, parse_frames(f.path, f.data)) for f in files if f.split == split]
            sequences = [frames[:: RAW_FPS // FPS] for _, frames in rows]
            if split == "train":
                stats = statistics(np.concatenate(sequences) if sequences else np.zeros((0, JOINTS, COMPONENTS)))
            info = datasets.DatasetInfo(description=json.dumps(stats) if split == "train" else "", features=features)
            splits[split] = datasets.Dataset.from_dict(
                {"action": [f.action for f, _ in rows], "number": [f.number for f, _ in rows],
                 "raw_frames": [len(frames) for _, frames in rows],
                 "frames": [s.astype(np.float32).reshape(-1) for s in sequences]},
                features=features, info=info,
            )
        return splits

    def _ready(self) -> ArrowCache:
        if self._cache is None or not self._cache.ready():  # prepare() re-reads and hashes every file
            self.prepare()
        return self._arrow()

    def _statistics(self) -> dict[str, Any]:
        if self._stats is None:
            cache = self._ready()
            try:
                stats = json.loads(cache.split("train").info.description)
                mean, std = np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)
                static = np.asarray(stats["static"], bool)
            except (ValueError, KeyError, TypeError) as error:
                raise DataError(f"cmu_mocap: the data cache {cache.path} holds no readable normalisation "
                                f"statistics ({error}); delete that folder to rebuild it") from None
            if (mean.shape != (COMPONENTS, len(KEPT_JOINTS)) or std.shape != mean.shape or static.shape != mean.shape
                    or not (std > 0).all()):
                raise DataError(f"cmu_mocap: the data cache {cache.path} holds statistics of shapes {mean.shape} "
                                f"and {std.shape} (expected {(COMPONENTS, len(KEPT_JOINTS))}, std > 0); delete it")
            self._stats = {**stats, "mean": mean, "std": std, "static": static}
        return self._stats

    @property
    def mean(self) -> Tensor:
        """The training frames' mean per (component, joint), float64 (3, 24) (prepares if needed)."""
        return torch.from_numpy(self._statistics()["mean"].copy())

    @property
    def std(self) -> Tensor:
        """The training frames' standard deviation per (component, joint), floored (3, 24)."""
        return torch.from_numpy(self._statistics()["std"].copy())

    @property
    def static(self) -> Tensor:
        """Which (component, joint) channels are constant in the training frames, bool (3, 24)."""
        return torch.from_numpy(self._statistics()["static"].copy())

    def split_files(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(action, number, raw frames R, 25 fps frames (sum n, 38, 3) float32) of a split's files."""
        check_split("cmu_mocap", split)
        table = self._ready().split(split).data
        action, number, raw = (table.column(c).to_numpy() for c in ("action", "number", "raw_frames"))
        frames = table.column("frames").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        n = (raw + 1) // 2
        if frames.size != int(n.sum()) * JOINTS * COMPONENTS:
            raise DataError(f"cmu_mocap: the data cache {self._arrow().path} split {split} holds {frames.size} values "
                            f"for {int(n.sum())} frames; delete that folder to rebuild it")
        return action, number, raw, frames.reshape(-1, JOINTS, COMPONENTS)

    def windows(self, split: str) -> dict[str, np.ndarray]:
        """The split's windows in order: ``action``, ``protocol``, file ``number``, ``start`` (the
        input's first frame on the file's 25 fps sequence) and ``offset`` (that frame's row in the
        split's concatenated frames); the first ``limit[split]`` of each action and protocol."""
        action, number, raw, _ = self.split_files(split)
        offsets = np.concatenate([[0], np.cumsum((raw + 1) // 2)[:-1]]).astype(np.int64)
        protocols = ["train"] if split == "train" else self.protocols
        keep = self.limit.get(split)
        parts: list[dict[str, np.ndarray]] = []
        for a in range(len(self.actions)):
            files = np.flatnonzero(action == a)
            for p, protocol in enumerate(protocols):
                rows = []
                for f in files:
                    if protocol == "ltd8" and (raw[f] + 1) // 2 <= LTD_INPUT + LTD_OUTPUT:
                        raise DataError(f"cmu_mocap: {split} file {self.actions[a]}_{number[f]} has "
                                        f"{(raw[f] + 1) // 2} frames at 25 fps; protocol ltd8 needs more than "
                                        f"{LTD_INPUT + LTD_OUTPUT}")
                    starts = window_starts(protocol, int(raw[f]), self.input_frames, self.output_frames,
                                           self.train_stride)
                    rows.append(np.stack([np.full_like(starts, f), starts]))
                block = np.concatenate(rows, axis=1)[:, :keep] if rows else np.zeros((2, 0), np.int64)
                parts.append({"action": np.full(block.shape[1], a), "protocol": np.full(block.shape[1], p),
                              "number": number[block[0]], "start": block[1], "offset": offsets[block[0]] + block[1]})
        return {k: np.concatenate([part[k] for part in parts]).astype(np.int64) for k in parts[0]}

    def dataset(self, split: str) -> CMUMocapDataset:
        """The ``split`` as a map-style dataset of the batch keys (prepares if needed)."""
        check_split("cmu_mocap", split)
        _, _, _, frames = self.split_files(split)
        stats = self._statistics()
        normalised = (kept(frames.astype(np.float64)) - stats["mean"]) / stats["std"]
        jitter = StaticJitter(stats["static"], self.static_noise, self.noise_seed, SPLITS.index(split))
        return CMUMocapDataset(frames, normalised.astype(np.float32), self.windows(split),
                               self.input_frames, self.output_frames, jitter)

    def data_spec(self) -> DataSpec:
        frame = (COMPONENTS, len(KEPT_JOINTS))
        return DataSpec(
            shapes={"x": (self.input_frames, *frame), "y": (self.output_frames, *frame),
                    "y_raw": (self.output_frames, JOINTS, COMPONENTS), "x_last_raw": (JOINTS, COMPONENTS),
                    "action": (), "protocol": ()},
            target="y", condition="x",
        )

    # metrics ------------------------------------------------------------------------------
    def horizons(self) -> list[int]:
        """The reported horizons in ms (:data:`HORIZONS_MS`) within ``output_frames``."""
        return [ms for ms in HORIZONS_MS if ms // FRAME_MS <= self.output_frames]

    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """Every MPJPE and angle error (module docstring) per protocol, action and horizon: "min"."""
        names = []
        for p in self.protocols:
            for a in self.actions:
                names += [f"mpjpe_{p}_{a}_{ms}ms" for ms in self.horizons()]
                names += [f"angle_error_{p}_{a}_{ms}ms" for ms in self.horizons()]
                names.append(f"mpjpe_{p}_{a}_avg")
            names += [f"mpjpe_{p}_mean_{ms}ms" for ms in self.horizons()]
        return dict.fromkeys(names, "min")

    def full_pose(self, prediction: Tensor, y_raw: Tensor) -> Tensor:
        """A normalised prediction (B, T, 3, 24) -> the 38 joints' exp maps (B, T, 38, 3), float64:
        de-normalised into the kept joints, the other joints copied from the truth ``y_raw``."""
        expected = (len(y_raw), self.output_frames, COMPONENTS, len(KEPT_JOINTS))
        if tuple(prediction.shape) != expected:
            raise ShapeError(f"cmu_mocap: a prediction must have shape (B, T_out, 3, 24) = {expected}, "
                             f"got {tuple(prediction.shape)}")
        mean, std = (t.to(prediction.device) for t in (self.mean, self.std))
        values = (prediction.double() * std + mean).transpose(-1, -2)  # (B, T, 24, 3)
        full = y_raw.double().clone()
        full[:, :, list(KEPT_JOINTS)] = values
        return full

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        """The MPJPE and angle errors of ``model.predict`` over ``loader`` (module docstring).

        Options: ``samples`` (M, default 10) and ``temperature`` (default None) of ``model.predict``.
        """
        samples, temperature = prediction_options("cmu_mocap", "evaluate", options, None)
        device = device_of(model)
        shape = (len(self.protocols), len(self.actions))
        counts = torch.zeros(shape, dtype=torch.float64)
        position = torch.zeros((*shape, self.output_frames), dtype=torch.float64)
        angle = torch.zeros_like(position)
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                pred = model.predict(batch, samples=samples, temperature=temperature)
                truth = batch["y_raw"].double()
                full = self.full_pose(pred, truth)
                group = (batch["protocol"] * len(self.actions) + batch["action"]).long().cpu()
                for values, total in ((mpjpe(full, truth), position), (axis_angle_error(full, truth), angle)):
                    total.view(-1, self.output_frames).index_add_(0, group, values.double().cpu())
                counts.view(-1).index_add_(0, group, torch.ones(len(group), dtype=torch.float64))
        finally:
            model.train(was_training)
        if counts.sum() == 0:
            raise DataError("cmu_mocap.evaluate: the loader yielded no windows")
        position, angle = position / counts[..., None], angle / counts[..., None]  # NaN where no windows
        metrics = {}
        for i, p in enumerate(self.protocols):
            for j, a in enumerate(self.actions):
                for ms in self.horizons():
                    metrics[f"mpjpe_{p}_{a}_{ms}ms"] = position[i, j, ms // FRAME_MS - 1].item()
                    metrics[f"angle_error_{p}_{a}_{ms}ms"] = angle[i, j, ms // FRAME_MS - 1].item()
                metrics[f"mpjpe_{p}_{a}_avg"] = position[i, j].mean().item()
            for ms in self.horizons():
                metrics[f"mpjpe_{p}_mean_{ms}ms"] = position[i, :, ms // FRAME_MS - 1].mean().item()
        return {name: metrics[name] for name in self.metric_directions()}


    # pictures -----------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(
        self, model: nn.Module, path: Path | str, n: int = 4, temperature: float | None = None, **options: Any
    ) -> Path:
        """A PNG of ``n`` test windows as stick figures (:func:`draw_stick_figures`), one row each.

        The windows are taken in turn from each action and protocol (the first window of each,
        then the second, ...), so a small ``n`` shows every one. Options: ``samples`` (M, default
        10) of ``model.predict``; ``temperature`` its temperature (default None: the model's own).
        """
        samples, temperature = prediction_options("cmu_mocap", "save_samples", {**options, "temperature": temperature}, None)
        data = self.dataset("test")
        groups = data.windows["action"] * len(self.protocols) + data.windows["protocol"]
        rank = np.zeros(len(groups), dtype=np.int64)  # position of each window within its group
        for g in np.unique(groups):
            rank[groups == g] = np.arange(int((groups == g).sum()))
        rows = np.lexsort((groups, rank))[: max(int(n), 1)].tolist()
        if not rows:
            raise DataError("cmu_mocap.save_samples: the test split has no windows")
        device = device_of(model)
        batch = {k: v.to(device) for k, v in default_collate(data.__getitems__(rows)).items()}
        was_training = model.training
        model.eval()
        try:
            pred = self.full_pose(model.predict(batch, samples=samples, temperature=temperature), batch["y_raw"])
        finally:
            model.train(was_training)
        inputs = batch["x"].double() * self.std.to(device) + self.mean.to(device)  # (B, T_in, 3, 24)
        past = batch["x_last_raw"].double()[:, None].expand(-1, self.input_frames, -1, -1).clone()
        past[:, :, list(KEPT_JOINTS)] = inputs.transpose(-1, -2)  # the other joints: the last input frame's
        labels = [f"{self.actions[int(a)]}, {self.protocols[int(p)]}, frame {int(data.windows['start'][r])}"
                  for a, p, r in zip(batch["action"], batch["protocol"], rows, strict=True)]
        return draw_stick_figures(forward_kinematics(past).cpu(), forward_kinematics(batch["y_raw"].double()).cpu(),
                                  forward_kinematics(pred).cpu(), labels, Path(path))


def draw_stick_figures(past: Tensor, truth: Tensor, pred: Tensor, labels: list[str], path: Path) -> Path:
    """One row per window: 3 input frames (grey), then the truth (black) and the prediction (red) at
    the horizons :data:`PICTURE_MS`; joint positions (B, T, 38, 3) seen obliquely (:func:`project`)."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    t_in, t_out = past.shape[1], truth.shape[1]
    shown_in = sorted({0, t_in // 2, t_in - 1})
    shown_out = [ms // FRAME_MS for ms in PICTURE_MS if ms // FRAME_MS <= t_out] or [t_out]
    columns = len(shown_in) + len(shown_out)
    figure = Figure(figsize=(columns * 1.1, len(labels) * 1.5 + 0.4), layout="constrained")
    axes = figure.subplots(len(labels), columns, squeeze=False)
    bones = [(i, parent) for i, parent in enumerate(PARENTS) if parent >= 0]
    for r, label in enumerate(labels):
        row = [(past[r, t], None, f"input {(t - t_in + 1) * FRAME_MS} ms") for t in shown_in]
        row += [(truth[r, k - 1], pred[r, k - 1], f"+{k * FRAME_MS} ms") for k in shown_out]
        # the panel holds the input and the truth, and the prediction as far as it stays finite
        # and within one extent of them (a diverged rollout leaves the panel instead of shrinking it)
        known = project(torch.cat([past[r], truth[r]]))
        low, high = known.amin((0, 1)), known.amax((0, 1))
        guess = project(pred[r]).reshape(-1, 2)
        guess = guess[torch.isfinite(guess).all(1)]
        if len(guess):
            extent = high - low
            low = torch.minimum(low, torch.maximum(guess.amin(0), low - extent))
            high = torch.maximum(high, torch.minimum(guess.amax(0), high + extent))
        low, high = low.numpy(), high.numpy()
        centre, half = (low + high) / 2, (high - low).max() / 2 * 1.05 + 1e-6
        for c, (first, second, title) in enumerate(row):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([]), ax.set_aspect("equal")
            ax.set_xlim(centre[0] - half, centre[0] + half), ax.set_ylim(centre[1] - half, centre[1] + half)
            for pose, colour, width in ((first, "0.55" if second is None else "black", 1.2), (second, "tab:red", 1.0)):
                if pose is not None:
                    xy = project(pose).numpy()
                    ax.add_collection(LineCollection([(xy[i], xy[p]) for i, p in bones], colors=colour, linewidths=width))
            ax.set_title(title, fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=6)
    figure.suptitle("CMU mocap: input (grey), truth (black), prediction (red)", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def project(positions: Tensor) -> Tensor:
    """Joint positions (..., 3) -> picture coordinates (..., 2): the vertical axis y up, and the
    horizontal axis halfway between the skeleton's lateral x and its forward z (a 45-degree view)."""
    return torch.stack([(positions[..., 0] + positions[..., 2]) / math.sqrt(2), positions[..., 1]], -1)


def plot_mpjpe_curves(metrics: Mapping[str, float] | Mapping[str, Mapping[str, float]], path: Path | str) -> Path:
    """MPJPE (mm) against the horizon (ms) from :meth:`CMUMocap.evaluate`'s dict: one panel per
    protocol (row) and action or the mean over actions (column).

    ``metrics`` is one such dict, or a mapping label -> dict (one line each, e.g. a model and
    the zero-velocity baseline). The keys ``mpjpe_<protocol>_<action>_<h>ms`` are read; others
    are ignored, and a dict without any is a ValueError.
    """
    from matplotlib.figure import Figure

    if all(isinstance(v, Mapping) for v in metrics.values()) and metrics:
        runs = {str(k): v for k, v in metrics.items()}
    else:
        runs = {"": metrics}
    curves: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    for label, values in runs.items():
        found = False
        for name, value in values.items():
            match = CURVE_KEY.match(name)
            if match:
                found = True
                point = (int(match["ms"]), float(value))
                curves.setdefault((match["protocol"], match["action"]), {}).setdefault(label, []).append(point)
        if not found:
            raise ValueError(f"plot_mpjpe_curves: the metrics{f' of {label!r}' if label else ''} hold no key "
                             "mpjpe_<protocol>_<action>_<h>ms (cmu_mocap.evaluate's names)")
    protocols = [p for p in PROTOCOLS if any(key[0] == p for key in curves)]
    actions = sorted({a for _, a in curves if a != "mean"}) + (["mean"] if any(a == "mean" for _, a in curves) else [])
    figure = Figure(figsize=(2.4 * len(actions), 2.0 * len(protocols) + 0.3), layout="constrained")
    axes = figure.subplots(len(protocols), len(actions), squeeze=False)
    for i, protocol in enumerate(protocols):
        for j, action in enumerate(actions):
            ax = axes[i, j]
            for label, points in curves.get((protocol, action), {}).items():
                ms, mm = zip(*sorted(points), strict=True)
                ax.plot(ms, mm, marker="o", markersize=3, label=label or None)
            ax.set_title(f"{protocol}: {action}", fontsize=8)
            ax.set_xlabel("horizon (ms)", fontsize=7), ax.set_ylabel("MPJPE (mm)", fontsize=7)
            ax.tick_params(labelsize=6), ax.grid(alpha=0.3)
    if any(runs):
        axes[0, 0].legend(fontsize=6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


@dataclass(frozen=True)
class StaticJitter:
    """The static channels' jitter (module docstring): N(0, ``std``^2) on the channels ``static``
    (3, 24), one draw per frame from a generator seeded by (``seed``, split index, epoch)."""

    static: np.ndarray
    std: float
    seed: int
    split: int

    def draw(self, frames: int, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.split, epoch])
        return rng.standard_normal((frames, *self.static.shape)) * (self.std * self.static)


class CMUMocapDataset(Dataset):
    """One split in memory: its files' 25 fps frames, once raw (N, 38, 3) and once normalised
    (N, 3, 24), and its windows as row offsets into them; an item is two slices.

    ``__getitems__`` serves a whole batch with one gather (PyTorch's ``DataLoader`` uses it).
    The window table (:meth:`CMUMocap.windows`) is kept as :attr:`windows`. The static channels'
    jitter of epoch 0 is added at construction; :meth:`set_epoch` redraws it for another epoch
    (the trainer calls it on the training split only).
    """

    def __init__(
        self, frames: np.ndarray, normalised: np.ndarray, windows: dict[str, np.ndarray],
        input_frames: int, output_frames: int, jitter: StaticJitter | None = None,
    ):
        self.frames = torch.from_numpy(np.array(frames, dtype=np.float32))  # writable copies
        self.exact = np.asarray(normalised, dtype=np.float64)
        self.jitter = jitter if jitter is not None and jitter.std > 0 else None
        self.set_epoch(0)
        self.windows = windows
        self.offsets = torch.from_numpy(windows["offset"])
        self.action = torch.from_numpy(windows["action"])
        self.protocol = torch.from_numpy(windows["protocol"])
        self.input_frames, self.output_frames = input_frames, output_frames
        self.steps = torch.arange(input_frames + output_frames)

    def set_epoch(self, epoch: int) -> None:
        """Use the static channels' jitter of ``epoch``."""
        values = self.exact if self.jitter is None else self.exact + self.jitter.draw(len(self.exact), int(epoch))
        self.normalised = torch.from_numpy(values.astype(np.float32))

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"cmu_mocap: index out of range for a split of {len(self)} windows")
        rows = rows % max(len(self), 1)
        frames = self.offsets[rows][:, None] + self.steps  # (B, L) rows of the split's frames
        t = self.input_frames
        values = self.normalised[frames]
        x, y = values[:, :t], values[:, t:]
        y_raw, x_last = self.frames[frames[:, t:]], self.frames[frames[:, t - 1]]
        action, protocol = self.action[rows], self.protocol[rows]
        return [{"x": x[i], "y": y[i], "y_raw": y_raw[i], "x_last_raw": x_last[i], "action": action[i],
                 "protocol": protocol[i]} for i in range(len(rows))]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]
