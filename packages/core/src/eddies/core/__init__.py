"""eddies.core: registries, component specs, recipes, interfaces and generic model kinds.

Everything a plug-in author needs is importable from here::

    from eddies.core import Bijection, ComponentConfig, SpecOf, register
"""

from eddies.core.bijection import Bijection, sum_except_batch, zeros_logdet
from eddies.core.bounds import soft_bound
from eddies.core.conditioner import Conditioner, SequenceConditioner
from eddies.core.errors import (
    CheckpointError,
    DataError,
    DuplicateComponentError,
    EddiesError,
    InputOutsideDomain,
    NonFiniteLossError,
    PluginError,
    RecipeError,
    RegistryError,
    RunDirError,
    ShapeError,
    TrainingInterrupted,
    UnknownComponentError,
    UnknownVersionError,
)
from eddies.core.model import Model
from eddies.core.prior import Prior, TemporalPrior
from eddies.core.recipe import Recipe, TrainConfig, load_recipe
from eddies.core.registry import (
    CONDITIONERS,
    FLOWS,
    KINDS,
    MODELS,
    OPTIMIZERS,
    PRIORS,
    SCHEDULERS,
    TASKS,
    ComponentConfig,
    Entry,
    Registry,
    get_registry,
    register,
)
from eddies.core.spec import Spec, SpecOf, build, validate_spec
from eddies.core.task import DataSpec, Task, default_data_dir

__version__ = "0.1.0"

__all__ = [
    "CONDITIONERS", "FLOWS", "KINDS", "MODELS", "OPTIMIZERS", "PRIORS", "SCHEDULERS", "TASKS",
    "Bijection", "CheckpointError", "ComponentConfig", "Conditioner", "DataError", "DataSpec",
    "DuplicateComponentError", "EddiesError", "Entry", "InputOutsideDomain", "Model",
    "NonFiniteLossError", "PluginError", "Prior", "Recipe", "RecipeError", "Registry", "RegistryError",
    "RunDirError", "SequenceConditioner", "ShapeError", "Spec", "SpecOf", "Task", "TemporalPrior",
    "TrainConfig", "TrainingInterrupted", "UnknownComponentError",
    "UnknownVersionError", "build", "default_data_dir", "get_registry", "load_recipe", "register",
    "soft_bound", "sum_except_batch", "validate_spec", "zeros_logdet",
]
