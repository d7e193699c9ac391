"""The exceptions eddies raises.

Every error a user can cause derives from :class:`EddiesError`, so applications can catch one
type; each names what is wrong and where (a recipe key, a file, a tensor shape).
"""

from __future__ import annotations


class EddiesError(Exception):
    """Base class of every error eddies raises on purpose."""


class RegistryError(EddiesError, LookupError):
    """A component name or version that is not registered, or a conflicting registration."""


class UnknownComponentError(RegistryError):
    """No component of that name is registered in the kind's registry."""


class UnknownVersionError(RegistryError):
    """The component exists, but not in the requested version."""


class DuplicateComponentError(RegistryError):
    """The same name and version were registered twice without ``override=True``."""


class RecipeError(EddiesError, ValueError):
    """A recipe, an override or a component spec is invalid.

    ``path`` is the dotted recipe path of the offending key (``model.flow.layers.2.hidden``),
    ``source`` the file the recipe came from, when known.
    """

    def __init__(self, message: str, path: str = "", source: str | None = None):
        self.path = path
        self.source = source
        self.message = message
        where = f"{path}: " if path else ""
        origin = f" (in {source})" if source else ""
        super().__init__(f"{where}{message}{origin}")


class ShapeError(EddiesError, ValueError):
    """A tensor of the wrong shape reached a component; the message names both shapes."""


class InputOutsideDomain(EddiesError, ValueError):
    """An input lies outside the domain of a bijection (for example logit of a value >= 1)."""


class CheckpointError(EddiesError, RuntimeError):
    """A checkpoint is missing, corrupted, or was built from other component versions."""


class NonFiniteLossError(EddiesError, FloatingPointError):
    """Training met too many non-finite losses or gradients in a row."""


class DataError(EddiesError, RuntimeError):
    """A data source is missing or malformed; the message says how to obtain it."""
