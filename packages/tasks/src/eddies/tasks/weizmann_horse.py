"""Task ``weizmann_horse``: binary horse segmentation, a mask y predicted from an image x (c-Glow).

Follows Lu & Huang, "Structured Output Learning with Conditional Generative Flows", AAAI 2020,
arXiv:1905.13288 (cglow.txt sections 4.2-4.3 and 5.2) and the protocol page
``../shared/protocols/cglow_horse.md``:

- **Source** (setting ``source``): a folder holding ``rgb/horseNNN.jpg`` (colour images) and
  ``figure_ground/horseNNN.jpg`` (their masks, JPEG grey levels), NNN = 001..328. By default
  the first ``shared/data/weizmann_horse`` found in the current directory or one of its parents,
  then beside this package's source tree (so ``../shared/data/weizmann_horse`` of the
  repository is found from the repository or any folder inside it). Every image needs its mask
  and vice versa; a missing, unreadable or truncated file, or one of more than
  :data:`MAX_PIXELS` pixels (checked before decoding), is a :class:`~eddies.core.DataError`
  naming it. (In this copy the masks are stored at a smaller resolution than the images, with
  the same aspect ratio; both are resized to S x S, which aligns them. An aspect ratio that
  differs by more than 2 % is an error naming both files.)
- **Split** (by file number, :data:`SPLIT_NUMBERS`): horse001-180 train, horse181-200
  validation, horse201-328 test (200 train + validation / 128 test as in the paper). The setting
  ``limit`` keeps the first N numbers of a split (tests, quick runs); only those files are read.
- **Preprocessing** (once, into a ``datasets`` Arrow cache ``data_dir/weizmann_horse/<key>``, the
  key hashing the bytes of every file read and the settings that change the cached values;
  built atomically by :mod:`eddies.tasks.cache`):
  the image resized to S x S (setting ``size``, default 32; the paper uses 32, 64, 128) with
  Pillow's bilinear filter (whose support widens with the scale factor, i.e. it antialiases
  when shrinking; torchvision's ``Resize`` on PIL images does the same) and kept as 8-bit
  values; the mask thresholded at 128 (grey level >= 128 is horse) *before* resizing, resized
  bilinearly as a {0, 1} float image, then rounded (>= 0.5 is horse).
- **Batch**: ``x`` (3, S, S) the image ``k / 255`` in [0, 1] (the condition); ``y`` (3, S, S) the
  target, the mask tiled to 3 channels (cglow.txt 5.2) and centred, ``m - 0.5``, plus the
  dequantisation noise below; ``mask`` (S, S) int64 the exact {0, 1} mask (the metrics' truth,
  free of noise); ``index`` int64 the file number NNN.
- **Noise** (the authors' code; :mod:`eddies.tasks.counter_noise`, a pure function of
  (``noise_seed``, split, epoch, file number)): training uses ``y = m - 0.5 + u`` with
  ``u ~ U[-0.5, 0.5)`` per tiled value, so a pixel of class m lies in the unit bin
  ``[m - 1, m)``, and ``x = k/255 + v`` with ``v ~ U[0, 1/256)``. By default the training noise
  is drawn afresh each epoch (``fresh_noise: true``: the paper's "augments the dataset", and
  the authors draw it anew at every step); ``fresh_noise: false`` keeps one draw per image for
  the whole run. The engine selects the epoch through ``set_epoch``, so a resumed run sees
  exactly the noise an uninterrupted one would. Validation and test leave x exact (the
  protocol: no dequantisation of x at test) and give y **one fixed draw** of the same noise
  (the draw of epoch 0 of their own stream), never redrawn.
- **The stated space of the NLL**: ``y`` as above, a continuous vector of D = 3 S^2 values, each
  of class m in the unit bin ``[m - 1, m)``. With bins of width 1 the density needs no offset:
  by cglow.txt section 4.2 (Jensen), ``E_u[-log p(m - 0.5 + u | x)] >= -log q(m | x)`` for the
  discrete, tiled mask. ``nll_nats`` is the mean over images of ``-log p(y | x)`` at the fixed
  draw: a one-draw estimate of that upper bound, comparable across evaluations because the
  draw is fixed, and in the same space as the training loss. (Evaluating at the bin centres
  ``m - 0.5`` without noise would bound nothing. The authors' code subtracts ``log 2`` per value
  (``n_bins = 2``) although its noise has width 1; the numbers here do not.)
- **Prediction** (:func:`predicted_mask`, eq. 4): ``model.predict(batch, samples=M,
  temperature=1)``, the mean of M draws in the target's space, then + 0.5, the mean of the 3
  channels, rounded (half to even, as ``torch.round`` and ``numpy.round``) and clipped to {0, 1}.
- **Metrics** (:meth:`WeizmannHorse.evaluate`, :mod:`eddies.tasks.segmentation_metrics`; the
  evaluate options ``samples`` (M, default 10) and ``temperature`` (default 1.0)):
  ``iou_class_mean_batch10`` the authors' score (consecutive groups of 10 images in file order,
  a 2 x 2 confusion matrix per group, the mean of background and foreground IoU, averaged over
  the groups; the test split's last group has 8 images and counts as one group), computed from
  per-image counts so it does not depend on the loader's batch size; ``iou_class_mean_pooled``
  the same class mean of the split's summed matrix; ``iou_foreground_pooled`` ``TP / (TP + FP +
  FN)`` of the summed matrix; ``pixel_accuracy``; and ``nll_nats`` (above), NaN for a model
  without ``log_prob`` (the FCN baseline: every declared metric is always returned, as the
  trainer requires). Directions: :meth:`WeizmannHorse.metric_directions`.
- **Pictures** (:meth:`WeizmannHorse.save_samples`): for the first n validation images, one row
  of image | true mask | predicted mask | per-pixel standard deviation over the M draws (of the
  channel mean).

Example (four real images in a temporary cache)::

    >>> import tempfile
    >>> task = WeizmannHorse(data_dir=tempfile.mkdtemp(), limit={"train": 2, "validation": 1, "test": 1})
    >>> task.prepare()
    >>> item = task.dataset("train")[0]
    >>> item["x"].shape, item["y"].shape, int(item["index"])
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32]), 1)
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate

from eddies.core import ComponentConfig, DataError, DataSpec, ShapeError, Task, register
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
from eddies.tasks.counter_noise import counter_uniform
from eddies.tasks.prediction import device_of, prediction_options
from eddies.tasks.segmentation_metrics import (
    AUTHORS_BATCH,
    batch_class_mean_iou,
    class_mean_iou,
    confusion_counts,
    foreground_iou,
    pixel_accuracy,
)

Split = Literal["train", "validation", "test"]  # SPLITS (eddies.tasks.cache): train, validation, test
SPLIT_NUMBERS: dict[str, range] = {"train": range(1, 181), "validation": range(181, 201), "test": range(201, 329)}
CHANNELS = 3
MASK_THRESHOLD = 128  # grey level >= 128 is horse (JPEG masks are not exactly binary)
ASPECT_TOLERANCE = 0.02
MAX_PIXELS = 1 << 24  # a source image decodes to at most 4096 x 4096 pixels (the set's largest is 1280 x 960)
IMAGE_LEVELS = 255  # x = k / 255 in [0, 1]
X_NOISE_WIDTH = 1 / 256  # x <- x + U(0, 1/256) in training (the authors' code)
CACHE_FORMAT = 1  # bump when the cached layout or the preprocessing changes
SOURCE_HINT = "set task.source=PATH to a folder holding rgb/horseNNN.jpg and figure_ground/horseNNN.jpg"


def split_numbers(split: str, limit: dict[str, int] | None = None) -> list[int]:
    """The file numbers of ``split`` in file order (the first ``limit[split]`` of them, if given)."""
    numbers = list(SPLIT_NUMBERS[check_split("weizmann_horse", split)])
    return numbers[: (limit or {}).get(split, len(numbers))]


def default_source() -> Path | None:
    """The first ``shared/data/weizmann_horse`` folder (:func:`eddies.tasks.cache.shared_data_folder`), or None."""
    return shared_data_folder("weizmann_horse")


def predicted_mask(prediction: Tensor) -> Tensor:
    """The prediction rule (cglow.txt eq. 4 and 4.3): a point estimate (B, 3, S, S) in the target's
    centred space -> + 0.5, mean over the 3 channels, round, clip -> (B, S, S) int64 in {0, 1}."""
    if prediction.dim() != 4 or prediction.shape[1] != CHANNELS:
        raise ShapeError(
            f"weizmann_horse: a prediction must have shape (B, {CHANNELS}, S, S), got {tuple(prediction.shape)}"
        )
    return torch.round((prediction.double() + 0.5).mean(dim=1)).clamp(0, 1).long()


def _decode(path: Path, data: bytes, mode: str) -> Any:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:  # read from the header, before decoding
                raise DataError(f"{path}: {image.width} x {image.height} pixels, more than the bound of "
                                f"{MAX_PIXELS} for a source image")
            image.load()
            return image.convert(mode)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None


def preprocess_pair(
    image_path: Path, image_bytes: bytes, mask_path: Path, mask_bytes: bytes, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One image and its mask -> (3, S, S) uint8 image levels and (S, S) uint8 {0, 1} mask."""
    from PIL import Image

    image = _decode(image_path, image_bytes, "RGB")
    grey = _decode(mask_path, mask_bytes, "L")
    (iw, ih), (mw, mh) = image.size, grey.size
    if abs(iw / ih - mw / mh) > ASPECT_TOLERANCE * (mw / mh):
        raise DataError(
            f"{mask_path}: the mask ({mw} x {mh}) does not have the aspect ratio of its image "
            f"{image_path} ({iw} x {ih})"
        )
    pixels = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    binary = (np.asarray(grey) >= MASK_THRESHOLD).astype(np.float32)
    shrunk = np.asarray(Image.fromarray(binary).resize((size, size), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)), (shrunk >= 0.5).astype(np.uint8)


class WeizmannHorseConfig(ComponentConfig):
    source: str | None = Field(
        None, description="folder with rgb/ and figure_ground/ (default: the first "
        "shared/data/weizmann_horse in the current directory, its parents, or beside the repository)",
    )
    size: int = Field(32, ge=4, le=1024, description="side S of the resized images and masks (paper: 32, 64, 128)")
    limit: dict[Split, Count] | None = Field(
        None, description="keep only the first N file numbers of these splits (tests, quick runs)"
    )
    noise_seed: int = Field(0, ge=0, description="seed of the dequantisation noise")
    fresh_noise: bool = Field(
        True, description="training noise drawn afresh each epoch (the authors') instead of once per run"
    )


@register(
    "tasks", "weizmann_horse", version=1, config=WeizmannHorseConfig,
    summary="Weizmann Horse binary segmentation: a tiled, centred mask y given the image x (c-Glow).",
)
class WeizmannHorse(Task):
    """Weizmann Horse segmentation; see the module docstring for data, noise, space and metrics."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        source: str | None = None,
        size: int = 32,
        limit: dict[str, int] | None = None,
        noise_seed: int = 0,
        fresh_noise: bool = True,
    ):
        super().__init__(data_dir)
        self.source = Path(source).expanduser() if source is not None else None
        self.size = int(size)
        self.limit = check_limit("weizmann_horse", limit)
        self.noise_seed = noise_seed
        self.fresh_noise = fresh_noise
        self._cache: ArrowCache | None = None

    # data ---------------------------------------------------------------------------------
    def source_dir(self) -> Path:
        """The source folder (the setting, or :func:`default_source`); a DataError if absent."""
        self.source = source_folder("weizmann_horse", self.source, "weizmann_horse", ("rgb", "figure_ground"),
                                    SOURCE_HINT)
        return self.source

    def _pairs(self) -> list[tuple[int, Path, Path]]:
        """(number, image path, mask path) of every file the settings use; a missing one is an error."""
        source = self.source_dir()
        pairs = []
        for split in SPLITS:
            for number in split_numbers(split, self.limit):
                image = source / "rgb" / f"horse{number:03d}.jpg"
                mask = source / "figure_ground" / f"horse{number:03d}.jpg"
                if not image.is_file():
                    also = f" (its mask {mask} exists)" if mask.is_file() else ""
                    raise DataError(f"{image}: image missing{also}")
                if not mask.is_file():
                    raise DataError(f"{mask}: mask missing (the mask of image {image})")
                pairs.append((number, image, mask))
        return pairs

    def _read_source(self) -> tuple[str, list[tuple[int, Path, bytes, Path, bytes]]]:
        """The bytes of every file used and their SHA-256 (names and contents, in file order)."""
        digest = hashlib.sha256()
        files = []
        for number, image, mask in self._pairs():
            image_bytes, mask_bytes = image.read_bytes(), mask.read_bytes()
            for path, data in ((image, image_bytes), (mask, mask_bytes)):
                digest.update(f"{path.parent.name}/{path.name}:{len(data)}:".encode())
                digest.update(data)
            files.append((number, image, image_bytes, mask, mask_bytes))
        return digest.hexdigest(), files

    def _arrow(self, source_sha256: str | None = None) -> ArrowCache:
        """The cache (:mod:`eddies.tasks.cache`) keyed by the files' SHA-256, ``size`` and ``limit``."""
        if self._cache is None:
            digest = source_sha256 or self._read_source()[0]
            settings = {"size": self.size, "limit": self.limit, "mask_threshold": MASK_THRESHOLD}
            key = cache_key(digest, settings, CACHE_FORMAT)
            self._cache = ArrowCache("weizmann_horse", self.data_dir / "weizmann_horse" / key)
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/weizmann_horse/<key>``: the key hashes the files' bytes, ``size`` and ``limit``."""
        return self._arrow().path

    def prepare(self) -> None:
        """Convert the source once into the Arrow cache (:meth:`eddies.tasks.cache.ArrowCache.build`).

        Every file used is read and hashed each time (about 17 MB for the whole set), so a
        changed file gives a new cache; decoding and resizing happen only on a cache miss.
        """
        source_sha256, files = self._read_source()
        self._cache = None  # the files may have changed since the last call
        self._arrow(source_sha256).build(lambda: self._convert(files))

    def _convert(self, files: list[tuple[int, Path, bytes, Path, bytes]]) -> dict[str, Any]:
        import datasets

        s = self.size
        features = datasets.Features({
            "image": datasets.Array3D((CHANNELS, s, s), "uint8"),
            "mask": datasets.Array2D((s, s), "uint8"),
            "index": datasets.Value("int64"),
        })
        by_number = {number: rest for number, *rest in files}
        splits = {}
        for split in SPLITS:
            numbers = split_numbers(split, self.limit)
            images, masks = [], []
            for number in numbers:
                image, mask = preprocess_pair(*by_number[number], size=s)
                images.append(image)
                masks.append(mask)
            splits[split] = datasets.Dataset.from_dict(
                {"image": np.stack(images) if images else np.zeros((0, CHANNELS, s, s), np.uint8),
                 "mask": np.stack(masks) if masks else np.zeros((0, s, s), np.uint8),
                 "index": np.asarray(numbers, dtype=np.int64)},
                features=features,
            )
        return splits

    def dataset(self, split: str) -> WeizmannHorseDataset:
        """The ``split`` as a map-style dataset of ``{"x", "y", "mask", "index"}`` (prepares if needed)."""
        check_split("weizmann_horse", split)
        if self._cache is None or not self._cache.ready():  # prepare() re-reads and hashes every file
            self.prepare()
        table = self._arrow().split(split).data
        s = self.size
        # read the Arrow columns directly (zero-copy); datasets' numpy formatter is far slower
        images = table.column("image").combine_chunks().storage.flatten().flatten().flatten().to_numpy()
        masks = table.column("mask").combine_chunks().storage.flatten().flatten().to_numpy()
        return WeizmannHorseDataset(
            images.reshape(-1, CHANNELS, s, s), masks.reshape(-1, s, s), table.column("index").to_numpy(),
            seed=self.noise_seed, stream=SPLITS.index(split), train=split == "train",
            fresh_each_epoch=self.fresh_noise and split == "train",
        )

    def data_spec(self) -> DataSpec:
        shape = (CHANNELS, self.size, self.size)
        return DataSpec(shapes={"y": shape, "x": shape}, target="y", condition="x")

    # metrics and pictures -----------------------------------------------------------------
    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """IoUs and accuracy are maximised, the NLL (NaN for models without ``log_prob``) minimised."""
        return {
            "iou_class_mean_batch10": "max", "iou_class_mean_pooled": "max",
            "iou_foreground_pooled": "max", "pixel_accuracy": "max", "nll_nats": "min",
        }

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, loader: Any, gather: Callable[[Tensor], Tensor] | None = None, **options: Any
    ) -> dict[str, float]:
        """The segmentation metrics of ``model``'s predictions over ``loader`` (module docstring).

        Options: ``samples`` (M, default 10) and ``temperature`` (default 1.0) of
        ``model.predict``. ``gather`` (e.g. ``accelerator.gather_for_metrics``) collects the
        per-image rows of every process; images are then put in file order (each once).
        """
        samples, temperature = prediction_options("weizmann_horse", "evaluate", options, 1.0)
        device = device_of(model)
        was_training = model.training
        model.eval()
        rows, density = [], None
        try:
            for batch in loader:
                batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                pred = predicted_mask(model.predict(batch, samples=samples, temperature=temperature))
                counts = confusion_counts(pred, batch["mask"]).reshape(-1, 4).double()
                nll = torch.full((len(counts), 1), float("nan"), dtype=torch.float64, device=counts.device)
                if density is not False:
                    try:
                        nll = -model.log_prob(batch).double().reshape(-1, 1)
                        density = True
                    except NotImplementedError:
                        density = False
                row = torch.cat([batch["index"].double().reshape(-1, 1), counts, nll], dim=1)
                rows.append((gather(row) if gather is not None else row).cpu())
        finally:
            model.train(was_training)
        if not rows:
            raise DataError("weizmann_horse.evaluate: the loader yielded no batches")
        table = torch.cat(rows)
        _, first = np.unique(table[:, 0].numpy(), return_index=True)  # file order, each image once
        table = table[torch.from_numpy(first)]
        per_image = table[:, 1:5].long().reshape(-1, 2, 2)
        pooled = per_image.sum(0)
        metrics = {
            "iou_class_mean_batch10": batch_class_mean_iou(per_image, AUTHORS_BATCH).item(),
            "iou_class_mean_pooled": class_mean_iou(pooled).item(),
            "iou_foreground_pooled": foreground_iou(pooled).item(),
            "pixel_accuracy": pixel_accuracy(pooled).item(),
        }
        metrics["nll_nats"] = table[:, 5].mean().item() if density else float("nan")
        return metrics

    @torch.no_grad()
    def save_samples(
        self, model: nn.Module, path: Path | str, n: int = 8, temperature: float = 1.0, **options: Any
    ) -> Path:
        """A PNG of the first ``n`` validation images: image | true mask | predicted mask | sample std.

        Options: ``samples`` (M, default 10). The std is over the M draws of ``model.sample``
        (of their channel mean); a model without ``sample`` gets an empty std panel.
        """
        samples, temperature = prediction_options("weizmann_horse", "save_samples", {**options, "temperature": temperature}, 1.0)
        data = self.dataset("validation")
        if len(data) == 0:
            raise DataError("weizmann_horse.save_samples: the validation split is empty")
        device = device_of(model)
        batch = default_collate(data.__getitems__(list(range(min(int(n), len(data))))))
        batch = {k: v.to(device) for k, v in batch.items()}
        was_training = model.training
        model.eval()
        try:
            pred = predicted_mask(model.predict(batch, samples=samples, temperature=temperature))
            try:
                draws = model.sample(batch, samples=samples, temperature=temperature)
                spread = (draws.double() + 0.5).mean(dim=2).std(dim=0, correction=0)
            except NotImplementedError:
                spread = None
        finally:
            model.train(was_training)
        return _draw_rows(batch, pred, spread, samples, Path(path))


def _draw_rows(batch: dict[str, Tensor], pred: Tensor, spread: Tensor | None, samples: int, path: Path) -> Path:
    """One row per image: the image, the true mask, the predicted mask, the per-pixel sample std."""
    from matplotlib.figure import Figure

    rows = len(pred)
    titles = ("image", "true mask", f"predicted (M={samples})", "sample std (0-0.5)")
    figure = Figure(figsize=(4 * 1.3, rows * 1.3 + 0.3), layout="constrained")
    axes = figure.subplots(rows, 4, squeeze=False)
    images = batch["x"].detach().double().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    for r in range(rows):
        panels = (images[r], batch["mask"][r].cpu().numpy(), pred[r].cpu().numpy(),
                  None if spread is None else spread[r].cpu().numpy())
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if panel is None:
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            elif c == 0:
                ax.imshow(panel, interpolation="nearest")
            else:  # masks in {0, 1}; the std of a value in [0, 1] is at most 0.5
                ax.imshow(panel, cmap="gray" if c < 3 else "magma", vmin=0, vmax=1 if c < 3 else 0.5,
                          interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
        axes[r, 0].set_ylabel(f"horse{int(batch['index'][r]):03d}", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


class WeizmannHorseDataset(Dataset):
    """One split in memory as 8-bit images and {0, 1} masks; tiles, centres and dequantises on access.

    ``__getitems__`` serves a whole batch with one vectorised noise draw (PyTorch's
    ``DataLoader`` uses it when present); ``set_epoch`` selects the training noise draw.
    """

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, numbers: np.ndarray, seed: int, stream: int,
        train: bool, fresh_each_epoch: bool,
    ):
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8))  # writable copies
        self.masks = torch.from_numpy(np.array(masks, dtype=np.uint8))
        self.numbers = torch.from_numpy(np.array(numbers, dtype=np.int64))
        self.seed, self.stream, self.train = seed, stream, train
        self.fresh_each_epoch = fresh_each_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the dequantisation noise of ``epoch`` (only when drawn afresh each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.numbers)

    def noise(self, rows: Tensor) -> Tensor:
        """The uniform [0, 1) draws (B, 2, 3, S, S) of these rows: [:, 0] for y, [:, 1] for x."""
        epoch = self.epoch if self.fresh_each_epoch else 0
        shape = self.images.shape[1:]
        size = 2 * int(np.prod(shape))
        draws = counter_uniform(self.seed, self.stream, epoch, self.numbers[rows].numpy(), size)
        return torch.from_numpy(draws).view(-1, 2, *shape)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"weizmann_horse: index out of range for a split of {len(self)} images")
        rows = rows % max(len(self), 1)
        masks = self.masks[rows].long()
        noise = self.noise(rows)
        y = masks[:, None].double().expand(-1, CHANNELS, -1, -1) - 0.5 + (noise[:, 0] - 0.5)
        x = self.images[rows].double() / IMAGE_LEVELS
        if self.train:
            x = x + noise[:, 1] * X_NOISE_WIDTH
        y, x, numbers = y.float(), x.float(), self.numbers[rows]
        return [{"x": x[i], "y": y[i], "mask": masks[i], "index": numbers[i]} for i in range(len(rows))]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]
