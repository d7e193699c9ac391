"""Tasks over one's own data, so the Trainer runs on it without a Task class: ``tensors`` and ``hf_dataset``.

``tensors``: named tensors with a common first (sample) axis, in a safetensors file. The file's
keys are ``<split>/<name>`` (``train/x``, ``train/y``, ``validation/x``, ...) or plain ``<name>``
(one pool, split below). A missing ``validation`` split is carved from ``train``: the last
``validation_fraction`` of a permutation drawn from ``seed``; a missing ``test`` split is the
validation split. Given in Python instead (runtime argument ``tensors``: ``{name: tensor}`` or
``{split: {name: tensor}}``, tensors or numpy arrays), the tensors are written to ``file`` (or,
unset, to ``<data_dir>/tensors/<first 16 hex digits of their SHA-256>.safetensors``) and the
task states the spec that names that file and its SHA-256 (``to_spec()``), so a recipe and a
checkpoint record where the data are, as plain data; nothing is pickled. A file whose SHA-256
differs from the recorded ``sha256`` is a :class:`~eddies.core.errors.DataError`.

``hf_dataset``: columns of a Hugging Face ``datasets`` dataset: a Hub name (``path: mnist``), a
builder with files (``path: csv``, ``data_files: {train: a.csv, validation: b.csv}``), or a folder
written by ``save_to_disk``. ``splits`` maps each eddies split to the dataset's split (for a Hub
name or a builder, slices too: ``train[:90%]``); ``test`` may be left out (then it is the
validation split). Hub downloads are cached under ``<data_dir>/hf_datasets`` (``datasets``'
Arrow files); ``HF_DATASETS_OFFLINE=1`` reads only that cache. Only the ``target`` and
``condition`` columns are served.

For both: floating tensors become float32 (integer ones keep their type), a scalar column of
``hf_dataset`` becomes a 1-vector, and every item of a split must have the shapes of its first
item (the loader stacks them). ``target`` names what the model predicts, ``condition`` the
conditioning input (``null``: unconditional). Both split by the rules of
:class:`~eddies.core.task.Task`.

Metrics (``metrics``, default both; all "min"), over a split of ``N`` items:

- ``mean_nll`` = -(1/N) Σ_i log p(y_i | x_i), in nats per item (the model's ``log_prob``);
- ``mse`` = (1/N) Σ_i (1/D) ||ŷ_i - y_i||², ŷ_i = ``model.predict`` (its sample average for
  flows), D the number of target values; ``eval`` options ``samples`` and ``temperature`` are
  passed to ``predict``.

A model without ``log_prob`` (or ``predict``) makes its metric a :class:`RecipeError` at
``task.metrics`` saying to leave it out. ``save_samples`` draws the first two target values
of test items against the model's samples for the same conditions (a histogram of the first
value when the target has one value), one panel per temperature.

Example::

    >>> import tempfile, torch
    >>> from eddies.core import build
    >>> x = torch.randn(100, 3); y = x[:, :2] + 0.1 * torch.randn(100, 2)
    >>> task = build("tensors", "tasks", data_dir=tempfile.mkdtemp(), tensors={"x": x, "y": y})
    >>> task.prepare(); len(task.dataset("train")), len(task.dataset("validation")), task.data_spec().shapes
    (90, 10, {'x': (3,), 'y': (2,)})
    >>> sorted(task.to_spec()) == ['condition', 'file', 'metrics', 'seed', 'sha256', 'target', 'type',
    ...                            'validation_fraction']
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from eddies.core import ComponentConfig, DataError, DataSpec, RecipeError, Task, register
from eddies.core.files import atomic_write_bytes, make_dir
from eddies.core.task import check_options
from eddies.tasks.cache import SPLITS, check_split, file_sha256
from eddies.tasks.prediction import device_of
from eddies.tasks.synthetic import TensorDictDataset

Metric = Literal["mean_nll", "mse"]
DIRECTIONS: dict[str, Literal["min", "max"]] = {"mean_nll": "min", "mse": "min"}


class _ColumnsConfig(ComponentConfig):
    target: str = Field("y", min_length=1, description="the tensor (column) the model predicts")
    condition: str | None = Field("x", min_length=1, description="the conditioning tensor (column); null: none")
    metrics: list[Metric] = Field(["mean_nll", "mse"], description="mean_nll (needs log_prob), mse (needs predict)")


class _Columns(Task):
    """What ``tensors`` and ``hf_dataset`` share: roles, data spec, metrics and the picture."""

    name = "user_data"

    def __init__(self, target: str, condition: str | None, metrics: list[str], data_dir: Path | str | None):
        super().__init__(data_dir)
        if condition == target:
            raise RecipeError(f"{self.name}: condition and target are both {target!r}", "task.condition")
        self.target, self.condition, self.metrics = target, condition, list(dict.fromkeys(metrics))
        self._splits: dict[str, Dataset] = {}
        self._shapes: dict[str, tuple[int, ...]] | None = None

    def _check_roles(self, names: list[str], where: str) -> None:
        for role, name in (("target", self.target), ("condition", self.condition)):
            if name is not None and name not in names:
                raise DataError(f"{self.name}: {where} has no {role} {name!r} (set task.{role}); it holds "
                                f"{', '.join(sorted(names))}")

    def dataset(self, split: str) -> Dataset:
        check_split(self.name, split)
        if not self._splits:
            raise DataError(f"{self.name}: call prepare() before dataset()")
        return self._splits[split]

    def data_spec(self) -> DataSpec:
        if self._shapes is None:
            raise DataError(f"{self.name}: call prepare() before data_spec() (the shapes come from the data)")
        return DataSpec(dict(self._shapes), target=self.target, condition=self.condition)

    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        """``mean_nll`` and ``mse`` (those of ``metrics``), both minimised."""
        return {m: DIRECTIONS[m] for m in self.metrics}

    def evaluate(self, model: nn.Module, loader: Any, samples: int | None = None,
                 temperature: float | None = None, **options: Any) -> dict[str, float]:
        """``mean_nll`` and ``mse`` of ``model`` over ``loader`` (see the module docstring)."""
        check_options(f"{self.name}.evaluate", options, ("samples", "temperature"))
        sums = dict.fromkeys(self.metrics, 0.0)
        count = 0
        with torch.no_grad():
            for batch in loader:
                y = batch[self.target]
                if "mean_nll" in sums:
                    sums["mean_nll"] -= float(self._call(model, "log_prob", "mean_nll", batch).double().sum())
                if "mse" in sums:
                    pred = self._call(model, "predict", "mse", batch, samples=samples, temperature=temperature)
                    sums["mse"] += float((pred.double() - y.double()).pow(2).reshape(len(y), -1).mean(1).sum())
                count += len(y)
        if count == 0:
            raise DataError(f"{self.name}: the evaluated split is empty")
        return {name: total / count for name, total in sums.items()}

    def _call(self, model: nn.Module, method: str, metric: str, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        try:
            return getattr(model, method)(batch, **kwargs)
        except NotImplementedError as err:
            kind = getattr(model, "kind", type(model).__name__)
            raise RecipeError(f"{self.name}: metric {metric} needs the model's {method}(), which {kind} does not "
                              f"have ({err}); leave {metric!r} out of task.metrics", "task.metrics") from None

    def save_samples(self, model: nn.Module, path: Path, n: int = 256,
                     temperature: float | list[float] | None = None, **options: Any) -> Path:
        """Test targets against model samples for the same conditions (first two target values)."""
        check_options(f"{self.name}.save_samples", options, path="samples")
        from matplotlib.figure import Figure  # not at import: registry discovery loads this module

        test = self.dataset("test")
        items = [test[i] for i in range(min(n, len(test)))]
        device = device_of(model)  # the model's (the trainer may use a GPU)
        batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
        temperatures = [1.0] if temperature is None else temperature if isinstance(temperature, list) else [temperature]
        truth = batch[self.target].reshape(len(items), -1).double().cpu()
        fig = Figure(figsize=(4 * len(temperatures), 4))
        for ax, t in zip(fig.subplots(1, len(temperatures), squeeze=False)[0], temperatures, strict=True):
            with torch.no_grad():
                drawn = model.sample(batch, temperature=t).reshape(len(items), -1).double().cpu()
            if truth.shape[1] == 1:
                ax.hist([truth[:, 0].numpy(), drawn[:, 0].numpy()], bins=30, label=["data", "model samples"])
                ax.set_xlabel(f"{self.target}[0]")
            else:
                ax.scatter(truth[:, 0], truth[:, 1], s=6, label="data")
                ax.scatter(drawn[:, 0], drawn[:, 1], s=6, label="model samples")
                ax.set_xlabel(f"{self.target} value 0")
                ax.set_ylabel(f"{self.target} value 1")
            ax.set_title(f"temperature {t:g}")
            ax.legend()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
        return path


def _as_tensor(value: Any, key: str) -> Tensor:
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(f"tensors: {key!r} is not a tensor or array ({type(value).__name__}: {err})") from None
    if tensor.dim() == 0:
        raise DataError(f"tensors: {key!r} is a scalar; every tensor needs a first (sample) axis")
    return tensor.detach().cpu().clone(memory_format=torch.contiguous_format)  # views of one storage: own copies


def flat_tensors(tensors: Mapping[str, Any]) -> dict[str, Tensor]:
    """``{name: t}`` or ``{split: {name: t}}`` as the file's keys (``name``, ``split/name``), sorted."""
    flat: dict[str, Tensor] = {}
    for key, value in tensors.items():
        if isinstance(value, Mapping):
            check_split("tensors", key)
            for name, tensor in value.items():
                flat[f"{key}/{name}"] = _as_tensor(tensor, f"{key}/{name}")
        else:
            flat[str(key)] = _as_tensor(value, str(key))
    if not flat:
        raise DataError("tensors: no tensors given")
    return dict(sorted(flat.items()))


def save_tensors(tensors: Mapping[str, Any], file: Path | str | None, data_dir: Path | str) -> tuple[Path, str]:
    """Write ``tensors`` as a safetensors file; return ``(path, SHA-256 of its bytes)``.

    ``file`` unset: ``<data_dir>/tensors/<16 hex digits of the SHA-256>.safetensors`` (the same
    tensors give the same file). Written atomically (:func:`eddies.core.files.atomic_write_bytes`);
    an existing file is kept when it holds the same bytes and is a :class:`DataError` otherwise
    (a recipe or a checkpoint may name it).
    """
    from safetensors.torch import save

    data = save(flat_tensors(tensors), metadata={"format": "pt"})
    digest = hashlib.sha256(data).hexdigest()
    path = Path(file).expanduser() if file is not None else Path(data_dir) / "tensors" / f"{digest[:16]}.safetensors"
    if path.is_file():
        if file_sha256(path) != digest:  # another recipe or run may record that file: never replaced
            raise DataError(f"tensors: {path} exists and holds other tensors; delete it or choose another file "
                            "(or another run_dir)")
        return path.resolve(), digest
    try:
        make_dir(path.parent)
        atomic_write_bytes(path, data)
    except OSError as err:
        raise DataError(f"tensors: cannot write {path} ({err.strerror or err}); set task.file or data_dir to a "
                        "writable place") from None
    return path.resolve(), digest


class TensorsConfig(_ColumnsConfig):
    file: str | None = Field(None, description="safetensors file with keys <split>/<name> or <name>; null: "
                             "the tensors are given in Python (written to data_dir/tensors)")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="the file's SHA-256, checked when set")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="of train, carved off when the file "
                                       "holds no validation split")
    seed: int = Field(0, description="seed of the permutation that carves the validation split")


@register(
    "tasks", "tensors", version=1, config=TensorsConfig,
    summary="One's own tensors (a safetensors file, or given in Python): target/condition by name, NLL and MSE.",
)
class Tensors(_Columns):
    """Named tensors from a safetensors file; see the module docstring."""

    name = "tensors"

    def __init__(self, file: str | None, sha256: str | None, validation_fraction: float, seed: int,
                 target: str, condition: str | None, metrics: list[str], data_dir: Path | str | None = None,
                 tensors: Mapping[str, Any] | None = None):
        super().__init__(target, condition, metrics, data_dir)
        self.validation_fraction, self.seed = validation_fraction, seed
        if tensors is not None:
            path, digest = save_tensors(tensors, file, self.data_dir)
            if sha256 is not None and sha256 != digest:
                raise RecipeError(f"tensors: the tensors given have SHA-256 {digest}, not task.sha256={sha256}",
                                  "task.sha256")
            file, sha256 = str(path), digest
        elif file is None:
            raise RecipeError("tensors: set task.file to a safetensors file, or give the tensors in Python "
                              "(eddies.engine.fit(model, {'x': ..., 'y': ...}))", "task.file")
        self.file, self.sha256 = Path(file).expanduser(), sha256

    def to_spec(self) -> dict[str, Any]:
        """The plain spec that rebuilds this task from its file (what recipes and checkpoints record)."""
        return {"type": "tensors@1", "file": str(self.file), "sha256": self.sha256, "target": self.target,
                "condition": self.condition, "metrics": self.metrics,
                "validation_fraction": self.validation_fraction, "seed": self.seed}

    def prepare(self) -> None:
        """Read the file (its SHA-256 checked when recorded) and form the three splits."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not self.file.is_file():
            raise DataError(f"tensors: the file {self.file} does not exist (task.file)")
        if self.sha256 is not None and file_sha256(self.file) != self.sha256:
            raise DataError(f"tensors: {self.file} changed since this recipe recorded it (its SHA-256 is not "
                            f"task.sha256={self.sha256})")
        try:
            flat = load_file(str(self.file))
        except (SafetensorError, OSError) as err:
            raise DataError(f"tensors: cannot read {self.file} as safetensors ({err})") from None
        splits = self._split(flat)
        self._shapes = self._check(splits)
        self._splits = {split: TensorDictDataset(t) for split, t in splits.items()}

    def _split(self, flat: dict[str, Tensor]) -> dict[str, dict[str, Tensor]]:
        flat = {k: v.float() if v.is_floating_point() else v for k, v in flat.items()}
        nested = {k for k in flat if "/" in k}
        if nested and len(nested) != len(flat):
            raise DataError(f"tensors: {self.file} mixes <split>/<name> keys with plain ones: {sorted(flat)}")
        if not nested:
            splits: dict[str, dict[str, Tensor]] = {"train": flat}
        else:
            splits = {}
            for key, tensor in flat.items():
                split, _, name = key.partition("/")
                if split not in SPLITS or not name or "/" in name:
                    raise DataError(f"tensors: key {key!r} of {self.file} is not <split>/<name> with a split "
                                    f"among {', '.join(SPLITS)}")
                splits.setdefault(split, {})[name] = tensor
            if "train" not in splits:
                raise DataError(f"tensors: {self.file} has no train split (keys train/<name>)")
        for split, tensors in splits.items():
            lengths = {name: len(t) for name, t in tensors.items()}
            if len(set(lengths.values())) != 1:
                raise DataError(f"tensors: the {split} tensors have different numbers of items: {lengths}")
        self._check_roles(list(splits["train"]), f"{self.file} (train split)")
        if "validation" not in splits:
            splits["train"], splits["validation"] = self._carve(splits["train"])
        splits.setdefault("test", splits["validation"])
        return splits

    def _carve(self, train: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        n = len(next(iter(train.values())))
        held = round(self.validation_fraction * n)
        if held < 1 or held >= n:
            raise DataError(f"tensors: validation_fraction={self.validation_fraction} of {n} training items leaves "
                            "no validation or no training item; give a validation split (validation/<name>)")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        keep, out = order[:n - held], order[n - held:]
        return {k: t[keep] for k, t in train.items()}, {k: t[out] for k, t in train.items()}

    def _check(self, splits: dict[str, dict[str, Tensor]]) -> dict[str, tuple[int, ...]]:
        shapes = {name: tuple(t.shape[1:]) for name, t in splits["train"].items()}
        for split, tensors in splits.items():
            mine = {name: tuple(t.shape[1:]) for name, t in tensors.items()}
            if mine != shapes:
                raise DataError(f"tensors: the {split} split's tensors {mine} differ in names or shapes from "
                                f"the train split's {shapes}")
        return shapes


class HFDatasetConfig(_ColumnsConfig):
    path: str = Field(..., min_length=1, description="a Hub dataset, a builder (csv, parquet, json, ...) or a "
                      "folder written by save_to_disk")
    name: str | None = Field(None, description="the dataset's configuration")
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        None, description="files of a builder (load_dataset's data_files)")
    revision: str | None = Field(None, description="the Hub revision (a tag or commit)")
    splits: dict[Literal["train", "validation", "test"], str] = Field(
        {"train": "train", "validation": "validation", "test": "test"},
        description="eddies split -> the dataset's split (Hub and builders: slices like train[:90%]); "
        "test left out: the validation split")


@register(
    "tasks", "hf_dataset", version=1, config=HFDatasetConfig,
    summary="Columns of a Hugging Face dataset (Hub, builder files or save_to_disk): target/condition, NLL and MSE.",
)
class HFDataset(_Columns):
    """Columns of a ``datasets`` dataset; see the module docstring."""

    name = "hf_dataset"

    def __init__(self, path: str, name: str | None, data_files: Any, revision: str | None,
                 splits: dict[str, str], target: str, condition: str | None, metrics: list[str],
                 data_dir: Path | str | None = None):
        super().__init__(target, condition, metrics, data_dir)
        missing = sorted({"train", "validation"} - set(splits))
        if missing:
            raise RecipeError(f"hf_dataset: splits must name the dataset's split for {', '.join(missing)}",
                              "task.splits")
        self.path, self.config_name, self.data_files, self.revision = path, name, data_files, revision
        self.split_names = dict(splits)

    def prepare(self) -> None:
        """Open the dataset's splits (a Hub download is cached under ``data_dir/hf_datasets``)."""
        columns = [c for c in (self.target, self.condition) if c is not None]
        opened = {split: self._open(split, source) for split, source in self.split_names.items()}
        opened.setdefault("test", opened["validation"])
        for split, ds in opened.items():
            self._check_roles(list(ds.column_names), f"split {self.split_names.get(split, 'validation')!r} of {self.path}")
            if len(ds) == 0:
                raise DataError(f"hf_dataset: split {self.split_names.get(split, 'validation')!r} of {self.path} is empty")
        self._splits = {split: _Rows(ds.select_columns(columns).with_format("torch")) for split, ds in opened.items()}
        first = {split: data[0] for split, data in self._splits.items()}
        self._shapes = {k: tuple(v.shape) for k, v in first["train"].items()}
        for split, item in first.items():
            shapes = {k: tuple(v.shape) for k, v in item.items()}
            if shapes != self._shapes:
                raise DataError(f"hf_dataset: the {split} split's items have shapes {shapes}, the train split's "
                                f"{self._shapes}")

    def _open(self, split: str, source: str) -> Any:
        import datasets

        folder = Path(self.path).expanduser()
        try:
            if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
                saved = datasets.load_from_disk(str(folder))
                if isinstance(saved, datasets.Dataset):
                    raise DataError(f"hf_dataset: {folder} holds one dataset without splits; save a DatasetDict "
                                    "(train, validation, ...) or use the tensors task")
                if source not in saved:
                    raise DataError(f"hf_dataset: {folder} has no split {source!r} (task.splits.{split}); it has "
                                    f"{', '.join(saved)}")
                return saved[source]
            return datasets.load_dataset(self.path, self.config_name, data_files=self.data_files,
                                         revision=self.revision, split=source,
                                         cache_dir=str(self.data_dir / "hf_datasets"))
        except DataError:
            raise
        except (ValueError, KeyError, FileNotFoundError, ConnectionError, OSError) as err:
            raise DataError(f"hf_dataset: cannot load split {source!r} (task.splits.{split}) of {self.path}: "
                            f"{type(err).__name__}: {err}") from None


class _Rows(Dataset):
    """Items of a torch-formatted ``datasets.Dataset``: floating tensors as float32, scalars as 1-vectors."""

    def __init__(self, data: Any):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = {}
        for key, value in self.data[int(index)].items():
            value = torch.as_tensor(value)
            item[key] = (value.float() if value.is_floating_point() else value).reshape(value.shape or (1,))
        return item


__all__ = ["HFDataset", "Tensors", "flat_tensors", "save_tensors"]
