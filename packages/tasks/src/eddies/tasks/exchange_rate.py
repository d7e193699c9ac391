"""Task ``exchange_rate``: 30-day probabilistic forecasts of 8 daily exchange rates.

Follows MotionFlow's comparison (Zand, Etemad & Greenspan, IEEE TPAMI 2023, arXiv:2104.04391;
motionflow.txt tables 4-5) on GluonTS's ``exchange_rate_nips`` split of the LSTNet data (Lai et
al., SIGIR 2018) and the protocol page ``../shared/protocols/motionflow_particles_exchange.md``.

- **Source** (setting ``source``): ``exchange_rate.txt.gz`` (or ``.txt``), 7,588 days x 8
  comma-separated rates, no header; by default in the first ``shared/data/exchange_rate`` from
  the working directory up (:func:`eddies.tasks.cache.shared_data_folder`). Another shape or a
  non-finite value is a :class:`~eddies.core.DataError` naming the file.
- **Split** (GluonTS's): training = the first ``train_days`` (6,071) days; ``test`` = 5 rolling
  windows (``test_windows``), window w forecasting days ``train_days + P w`` .. ``train_days +
  P (w + 1) - 1`` (P = ``prediction_length``, 30) from the ``context_length`` (30) days before
  them. ``validation``: the same rolling scheme on the last ``validation_windows`` x P (150)
  training days, which the ``train`` split then leaves out: its windows (every
  ``context_length + P`` consecutive days at stride 1) lie in the days before them, so no day is
  both trained on and validated on. (GluonTS's models train on all 6,071 days and have no
  validation split; this one is for checkpoint selection.)
- **Scaling**: per series, ``(v - mean) / std`` with the mean and population std of the
  ``train_days`` training days (never a test day).
- **Dequantisation** (``dequantise``, default 1e-6; :mod:`eddies.tasks.windows`): the rates are
  quoted to 6 decimals and repeat exactly from day to day (series 4, a pegged currency, on 34 % of
  the training days; the others on 3-6 %), so the exact training data have no finite density; the
  training split's rates get U(-0.5e-6, 0.5e-6) noise (one quote step), redrawn every epoch.
  Validation and test windows, and every metric, use the exact rates.
- **Batch**: ``x`` (context_length, 1, 8) and ``y`` (P, 1, 8), scaled: channels 1, height time,
  width the 8 series (MotionFlow's layout); ``y_raw`` (P, 8) the raw rates (float64);
  ``window`` () the window's index in its split.
- **Metrics** (:meth:`ExchangeRate.evaluate`, from ``model.sample(batch, samples=N,
  temperature=t)``, options ``samples`` default 100 and ``temperature`` default None, mapped back
  to raw rates): ``mse`` the squared error of the forecast mean (the mean of the N samples) over
  windows, series and days, in raw units (as table 5); ``crps_sum``
  (:func:`eddies.tasks.forecast_metrics.crps_sum`, pooled over the windows); ``mse_scaled`` the
  same MSE in the scaled space; ``mse_median`` the MSE of the samples' median (robust to a few
  paths that run away); ``diverged`` the fraction of sample paths holding a non-finite value
  (a rollout that overflowed: it makes ``mse`` and ``crps_sum`` NaN). All are minimised.
- **Picture** (:meth:`ExchangeRate.save_samples`): a fan chart of the 8 series for one test
  window (context, truth, median and the 5-95 % and 25-75 % bands of the samples).

Example (the real file, a temporary cache)::

    >>> import tempfile
    >>> task = ExchangeRate(data_dir=tempfile.mkdtemp())
    >>> task.prepare()
    >>> item = task.dataset("test")[0]
    >>> item["x"].shape, item["y"].shape, len(task.dataset("test")), len(task.dataset("train"))
    (torch.Size([30, 1, 8]), torch.Size([30, 1, 8]), 5, 5862)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from eddies.core import ComponentConfig, DataError, DataSpec, RecipeError, ShapeError, Task, register
from eddies.tasks.cache import SPLITS, ArrowCache, check_split, shared_data_folder, source_path
from eddies.tasks.forecast_metrics import crps_sum
from eddies.tasks.numpy_pickle import gunzip
from eddies.tasks.prediction import device_of, prediction_options
from eddies.tasks.windows import Windows, uniform

DAYS, SERIES = 7588, 8
FILE_NAMES = ("exchange_rate.txt.gz", "exchange_rate.txt")
MAX_BYTES = 1 << 26
CACHE_FORMAT = 1
SOURCE_HINT = "set task.source=PATH to exchange_rate.txt.gz (7,588 lines of 8 comma-separated rates)"


def default_source() -> Path | None:
    """``exchange_rate.txt.gz`` (or ``.txt``) in the first ``shared/data/exchange_rate``, or None."""
    folder = shared_data_folder("exchange_rate")
    found = [folder / name for name in FILE_NAMES if folder is not None and (folder / name).is_file()]
    return found[0] if found else None


def parse_rates(path: Path) -> np.ndarray:
    """The file's rates, (days, 8) float64; a DataError naming the file if they are not."""
    data = path.read_bytes()
    text = gunzip(data, str(path), MAX_BYTES) if path.suffix == ".gz" else data
    try:
        rates = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path}: not lines of {SERIES} comma-separated numbers ({error})") from None
    if rates.shape[1] != SERIES or not np.isfinite(rates).all():
        raise DataError(f"{path}: expected finite rates of shape (days, {SERIES}), got {rates.shape}"
                        f"{'' if np.isfinite(rates).all() else ' with non-finite values'}")
    return rates


class ExchangeRateConfig(ComponentConfig):
    source: str | None = Field(None, description="exchange_rate.txt(.gz) (default: shared/data/exchange_rate)")
    train_days: int = Field(6071, ge=2, description="the training period: the first days")
    context_length: int = Field(30, ge=2, description="days given before each forecast")
    prediction_length: int = Field(30, ge=1, description="days forecast, P")
    test_windows: int = Field(5, ge=1, description="rolling test windows after the training period")
    validation_windows: int = Field(5, ge=1, description="rolling windows on the last training days, held out")
    dequantise: float = Field(1e-6, ge=0.0, description="width of the training rates' uniform jitter, raw units "
                              "(the file's quote resolution; 0: off)")
    noise_seed: int = Field(0, ge=0, description="seed of that jitter")


@register(
    "tasks", "exchange_rate", version=1, config=ExchangeRateConfig,
    summary="8 daily exchange rates, 30-day probabilistic forecasts; MSE and CRPS-sum (MotionFlow table 5).",
)
class ExchangeRate(Task):
    """Exchange-rate forecasting; see the module docstring for the split, scaling and metrics."""

    def __init__(self, data_dir: Path | str | None = None, source: str | None = None, train_days: int = 6071,
                 context_length: int = 30, prediction_length: int = 30, test_windows: int = 5,
                 validation_windows: int = 5, dequantise: float = 1e-6, noise_seed: int = 0):
        super().__init__(data_dir)
        self.source = Path(source).expanduser() if source is not None else None
        self.train_days, self.context_length = int(train_days), int(context_length)
        self.prediction_length = int(prediction_length)
        self.test_windows, self.validation_windows = int(test_windows), int(validation_windows)
        self.dequantise, self.noise_seed = float(dequantise), int(noise_seed)
        if self.train_end - self.context_length - self.prediction_length < 0:
            raise RecipeError(
                f"exchange_rate: the training windows need context_length + prediction_length = "
                f"{self.context_length + self.prediction_length} days before the {self.validation_windows} x "
                f"{self.prediction_length} validation days, but train_days is {self.train_days}", "task.train_days")
        self._cache: ArrowCache | None = None
        self._rates: np.ndarray | None = None

    @property
    def train_end(self) -> int:
        """The first day the ``train`` split leaves out (the validation windows' targets start there)."""
        return self.train_days - self.validation_windows * self.prediction_length

    # data ---------------------------------------------------------------------------------
    def source_file(self) -> Path:
        self.source = source_path("exchange_rate", self.source, default_source(), SOURCE_HINT)
        return self.source

    def _arrow(self) -> ArrowCache:
        if self._cache is None:
            self._cache = ArrowCache.for_source(self.data_dir, "exchange_rate", self.source_file(), {}, CACHE_FORMAT)
        return self._cache

    def cache_dir(self) -> Path:
        """``data_dir/exchange_rate/<key>``, the key hashing the source file's bytes."""
        return self._arrow().path

    def prepare(self) -> None:
        """Convert the file once into the Arrow cache (every split holds all days; windows are
        index arithmetic at :meth:`dataset` time, so no setting rebuilds the cache)."""
        import datasets

        def make() -> dict[str, Any]:
            rates = parse_rates(self.source_file())
            table = datasets.Dataset.from_dict({"rates": rates.astype(np.float64).tolist()})
            return dict.fromkeys(SPLITS, table)

        self._arrow().build(make)

    def rates(self) -> np.ndarray:
        """All days' raw rates (days, 8) float64 (prepares if needed)."""
        if self._rates is None:
            if not self._arrow().ready():
                self.prepare()
            column = self._arrow().split("train").data.column("rates").combine_chunks()
            self._rates = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(column), -1)
            needed = self.train_days + self.test_windows * self.prediction_length
            if self._rates.ndim != 2 or self._rates.shape[1] != SERIES or len(self._rates) < needed:
                raise DataError(f"exchange_rate: {self.source_file()} holds {self._rates.shape} rates; the split needs "
                                f"{needed} days of {SERIES} series (train_days + test_windows x prediction_length)")
        return self._rates

    @property
    def scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per series (mean, population std) of the ``train_days`` training days."""
        train = self.rates()[: self.train_days]
        return train.mean(0), train.std(0)

    def target_starts(self, split: str) -> np.ndarray:
        """The first forecast day of each window of ``split`` (module docstring)."""
        check_split("exchange_rate", split)
        p = self.prediction_length
        if split == "test":
            return self.train_days + p * np.arange(self.test_windows)
        if split == "validation":
            return self.train_end + p * np.arange(self.validation_windows)
        return np.arange(self.context_length, self.train_end - p + 1)

    def dataset(self, split: str) -> Windows:
        """The split's windows as a map-style dataset of ``x``, ``y``, ``y_raw``, ``window``."""
        rates = self.rates()
        mean, std = self.scale
        scaled = torch.from_numpy((rates - mean) / std)[None, :, None]  # one sequence (1, days, 1, 8)
        starts = torch.from_numpy(self.target_starts(split) - self.context_length)
        windows = torch.stack([torch.zeros_like(starts), starts], 1)
        future = starts[:, None] + self.context_length + torch.arange(self.prediction_length)
        jitter = uniform(self.dequantise / std) if split == "train" and self.dequantise > 0 else None
        return Windows(scaled, windows, self.context_length, self.prediction_length,
                       {"y_raw": torch.from_numpy(rates)[future], "window": torch.arange(len(starts))},
                       jitter, self.noise_seed)

    def data_spec(self) -> DataSpec:
        return DataSpec({"x": (self.context_length, 1, SERIES), "y": (self.prediction_length, 1, SERIES),
                         "y_raw": (self.prediction_length, SERIES), "window": ()})

    # metrics ------------------------------------------------------------------------------
    def metric_directions(self) -> dict[str, Literal["min", "max"]]:
        return {"mse": "min", "crps_sum": "min", "mse_scaled": "min", "mse_median": "min", "diverged": "min"}

    def forecast(self, model: nn.Module, batch: dict[str, Tensor], samples: int, temperature: float | None) -> Tensor:
        """``samples`` forecasts in raw rates, (N, B, P, 8) float64."""
        options = {} if temperature is None else {"temperature": temperature}
        draws = model.sample(batch, samples=samples, **options)
        expected = (samples, len(batch["y"]), *self.data_spec().shapes["y"])
        if tuple(draws.shape) != expected:
            raise ShapeError(f"exchange_rate: model.sample(samples={samples}) must give (N, B, P, 1, 8) = {expected}, "
                             f"got {tuple(draws.shape)}")
        mean, std = (torch.from_numpy(v).to(draws.device) for v in self.scale)
        return draws.double()[:, :, :, 0] * std + mean

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, **options: Any) -> dict[str, float]:
        """MSE of the forecast mean and CRPS-sum over ``loader``'s windows (module docstring)."""
        samples, temperature = prediction_options("exchange_rate", "evaluate", options, None, default_samples=100)
        device, draws, truth = device_of(model), [], []
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                draws.append(self.forecast(model, batch, samples, temperature).cpu())
                truth.append(batch["y_raw"].double().cpu())
        finally:
            model.train(was_training)
        if not truth:
            raise DataError("exchange_rate.evaluate: the loader yielded no windows")
        forecasts, truth_raw = torch.cat(draws, 1), torch.cat(truth)
        mean, std = (torch.from_numpy(v) for v in self.scale)
        error = forecasts.mean(0) - truth_raw
        median = forecasts.nanmedian(0).values - truth_raw
        return {"mse": error.pow(2).mean().item(), "crps_sum": crps_sum(forecasts, truth_raw),
                "mse_scaled": (error / std).pow(2).mean().item(), "mse_median": median.pow(2).mean().item(),
                "diverged": (~torch.isfinite(forecasts).flatten(2).all(2)).double().mean().item()}

    # pictures -----------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self, model: nn.Module, path: Path | str, n: int = 100, temperature: float | None = None,
                     window: int = 0, **options: Any) -> Path:
        """A fan chart of the 8 series for test window ``window`` from ``n`` samples (default 100)."""
        from matplotlib.figure import Figure

        prediction_options("exchange_rate", "save_samples", {**options, "temperature": temperature}, None)
        data = self.dataset("test")
        if not 0 <= int(window) < len(data):
            raise ValueError(f"exchange_rate.save_samples: window must be in 0..{len(data) - 1}, got {window}")
        device = device_of(model)
        batch = {k: v.to(device) for k, v in data.batch([int(window)]).items()}
        was_training = model.training
        model.eval()
        try:
            draws = self.forecast(model, batch, max(int(n), 1), temperature)[:, 0].cpu()  # (N, P, 8)
        finally:
            model.train(was_training)
        start = int(self.target_starts("test")[int(window)])
        rates = self.rates()
        past_days = np.arange(start - self.context_length, start)
        days = np.arange(start, start + self.prediction_length)
        bands = torch.quantile(draws, torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=draws.dtype), dim=0).numpy()
        figure = Figure(figsize=(10, 4.6), layout="constrained")
        axes = figure.subplots(2, 4).ravel()
        for i, ax in enumerate(axes):
            ax.plot(past_days, rates[past_days, i], color="0.4", linewidth=1)
            ax.plot(days, rates[days, i], color="black", linewidth=1.2, label="truth")
            ax.fill_between(days, bands[0, :, i], bands[4, :, i], color="tab:blue", alpha=0.2, label="5-95 %")
            ax.fill_between(days, bands[1, :, i], bands[3, :, i], color="tab:blue", alpha=0.4, label="25-75 %")
            ax.plot(days, bands[2, :, i], color="tab:blue", linewidth=1, label="median")
            ax.set_title(f"series {i}", fontsize=8), ax.tick_params(labelsize=6)
        axes[0].legend(fontsize=6)
        figure.suptitle(f"exchange_rate: test window {window} (days {start}-{start + self.prediction_length - 1}), "
                        f"{len(draws)} samples", fontsize=9)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        return path

