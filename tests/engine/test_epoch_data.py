"""The trainer tells a dataset with ``set_epoch`` which epoch it is in, also after a resume."""

from eddies.engine import Trainer
from eddies.tasks.synthetic import TensorDictDataset
from tests.engine.conftest import tiny_recipe


def test_set_epoch_is_called_before_each_epoch_and_on_resume(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(TensorDictDataset, "set_epoch", lambda self, epoch: seen.append(epoch), raising=False)
    recipe = tiny_recipe({"epochs": 3})
    Trainer(recipe, tmp_path / "run").fit()
    assert seen == [0, 1, 2]
    seen.clear()
    # resume from the end of epoch 1 (checkpoints are written each epoch): only epoch 2 remains
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))
    Trainer(recipe, tmp_path / "again", resume=checkpoints[-2]).fit()
    assert seen == [2]
