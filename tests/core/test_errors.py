"""eddies.core.errors: every exception is importable from eddies.core, and derives from EddiesError."""

import inspect

import eddies.core
from eddies.core import errors


def test_every_error_class_is_exported_from_eddies_core():
    classes = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__}
    assert {"PluginError", "RunDirError", "TrainingInterrupted"} <= classes
    assert classes <= set(eddies.core.__all__), sorted(classes - set(eddies.core.__all__))
    assert all(issubclass(getattr(eddies.core, name), errors.EddiesError) for name in classes)


def test_training_interrupted_keeps_its_checkpoint():
    err = errors.TrainingInterrupted("stopped; checkpoint written: runs/x/checkpoints/step-000006", "runs/x")
    assert err.checkpoint == "runs/x" and str(err).endswith("step-000006")
    assert errors.TrainingInterrupted("no checkpoint").checkpoint is None
