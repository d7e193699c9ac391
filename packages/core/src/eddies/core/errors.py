"""The exceptions eddies raises.

Every error a user can cause derives from :class:`EddiesError`, so applications can catch one
type; each names what is wrong and where (a recipe key, a file, a tensor shape).
"""

from __future__ import annotations

import difflib
import reprlib
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


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out, on one line.

    Error messages quote user input through this (or :func:`brief`), so a 1 MB key or value
    never floods the terminal; control characters are escaped so the message stays one line.

        >>> shorten("a" * 100, 10)
        'aaaaaaaaaa... (90 more characters)'
    """
    text = str(text)
    cut = text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)


class _BoundedRepr(reprlib.Repr):
    """reprlib's bounded repr, also for integers too long to print (Python refuses > 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 3, 60, 60, 40
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 6

    def repr_int(self, x: int, level: int) -> str:
        return super().repr_int(x, level) if x.bit_length() <= 128 else f"<integer of {x.bit_length()} bits>"


_REPR = _BoundedRepr()


def brief(value: object, limit: int = 80) -> str:
    """A repr of ``value`` bounded in length and depth (:mod:`reprlib`), on one line.

    Never renders a huge or deeply shared value in full (a "billion laughs" list is fine):

        >>> brief(["x" * 100, [[[1]]]])
        "['xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx', [[[...]]]]"
    """
    return shorten(_REPR.repr(value), limit)


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

    The text is bounded whatever the input: each path, message and origin is cut
    (:func:`shorten`, at :data:`MAX_PATH`, :data:`MAX_MESSAGE` and :data:`MAX_ORIGIN`
    characters, control characters escaped) and at most :data:`MAX_PROBLEMS` problems are
    listed, the rest counted.
    """

    MAX_PATH, MAX_MESSAGE, MAX_ORIGIN, MAX_PROBLEMS = 200, 2000, 300, 50

    def __init__(
        self, message: str, path: str = "", source: str | None = None, origin: str | None = None,
        further: Sequence[Problem] = (),
    ):
        self.path, self.source, self.origin = path, source, origin
        self.message = message
        self.further = tuple(Problem(*p) for p in further)
        shown = self.problems[: self.MAX_PROBLEMS]
        first, *rest = [self._line(p) for p in shown]
        text = first + ("" if origin else f" (in {shorten(source, self.MAX_ORIGIN)})" if source else "")
        if rest:
            text += "\nfurther problems:\n" + "\n".join(f"  {line}" for line in rest)
        if len(self.problems) > len(shown):
            text += f"\n  ... and {len(self.problems) - len(shown)} more problems"
        super().__init__(text)

    def _line(self, problem: Problem) -> str:
        path, message, origin = problem
        text = shorten(str(message).replace("\n", "; "), self.MAX_MESSAGE)
        text = f"{shorten(path, self.MAX_PATH)}: {text}" if path else text
        return text + (f" (from {shorten(origin, self.MAX_ORIGIN)})" if origin else "")

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


class PluginError(EddiesError):
    """A plug-in's entry point failed while it was imported (it raised, or called ``sys.exit``)."""


class RunDirError(EddiesError, RuntimeError):
    """The run directory cannot be used: in use by another run, not a folder, not writable, full.

    The message names the path and the run's last good checkpoint (when it has one).
    """


class TrainingInterrupted(EddiesError):
    """Training was interrupted (Ctrl-C) and stopped after saving a checkpoint.

    ``checkpoint`` is the folder of that checkpoint (``None`` when none could be written); the
    message says where it is and how to continue (``resume=auto``).
    """

    def __init__(self, message: str, checkpoint: object = None):
        super().__init__(message)
        self.checkpoint = checkpoint  # a pathlib.Path, or None
