"""The exceptions eddies raises.

Every error a user can cause derives from :class:`EddiesError`, so applications can catch one
type; each names what is wrong and where (a recipe key, a file, a tensor shape).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import NamedTuple


def did_you_mean(name: str, options: Iterable[str], n: int = 3) -> str:
    """The hint ``" Did you mean 'a', 'b'?"`` naming the ``n`` options closest to ``name``.

    Closeness is :func:`difflib.get_close_matches`' similarity ratio (at least 0.5), closest
    first; the text starts with a space and is empty when nothing is close, so it reads well
    between two sentences: ``f"unknown key {key!r}.{did_you_mean(key, keys)} Keys: ..."``.

        >>> did_you_mean("trian", ["train", "task", "model"])
        " Did you mean 'train'?"
        >>> did_you_mean("zzz", ["train"])
        ''
    """
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


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


class Problem(NamedTuple):
    """One problem of a :class:`RecipeError`: dotted path, message, and the override that caused it."""

    path: str
    message: str
    origin: str | None = None


class RecipeError(EddiesError, ValueError):
    """A recipe, an override or a component spec is invalid.

    ``path`` is the dotted recipe path of the offending key (``model.flow.layers.2.hidden``),
    ``source`` the file the recipe came from, when known, and ``origin`` what set the key when
    it was not that file (``"the command-line override train.epochs=abc"``); the message then
    ends with ``(from <origin>)`` instead of ``(in <source>)``. ``further`` holds the other
    problems of a multi-error report, each with its full dotted path and its own origin.
    """

    def __init__(
        self, message: str, path: str = "", source: str | None = None, origin: str | None = None,
        further: Sequence[Problem] = (),
    ):
        self.path, self.source, self.origin = path, source, origin
        self.message = message
        self.further = tuple(Problem(*p) for p in further)
        text = f"{path}: {message}" if path else message
        text += f" (from {origin})" if origin else f" (in {source})" if source else ""
        if self.further:
            text += "\nfurther problems:\n" + "\n".join(
                f"  {p.path}: {p.message}" + (f" (from {p.origin})" if p.origin else "") for p in self.further)
        super().__init__(text)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem: this error's own first, then ``further``."""
        return (Problem(self.path, self.message, self.origin), *self.further)


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
