"""Registries of named, versioned components, filled by decorators and by entry points.

One :class:`Registry` per kind (``flows``, ``conditioners``, ``priors``, ``models``, ``tasks``,
``optimizers``, ``schedulers``). A component registers under a name, an integer version, a
pydantic config model (``extra="forbid"``) and a one-line summary::

    from eddies.core import ComponentConfig, register

    class ScaleConfig(ComponentConfig):
        factor: float = 2.0

    @register("flows", "scale", version=1, config=ScaleConfig, summary="Multiply by a constant.")
    class Scale(Bijection):
        ...

Lookup takes ``name`` (the latest version) or ``name@N``. Third-party packages register through
the entry-point group ``eddies.<kind>`` whose value is a module to import; discovery is lazy (on
the first lookup or listing of that kind; eddies' own distributions load first), and
``EDDIES_DISABLE_PLUGINS=1`` skips third-party plug-ins (eddies' own distributions always load).
A plug-in that raises anything (``sys.exit`` included) while it is imported makes every lookup of
its kind a :class:`~eddies.core.errors.PluginError` naming its distribution and entry point.
Every entry records the distribution and version that provided it, so a checkpoint can say
exactly which components built it. Replacing another distribution's ``name@version`` with
``override=True`` warns naming both distributions, and the entry keeps the replaced one in
``overrides`` (``apps/components.py list`` shows it).
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict

from eddies.core.errors import (
    DuplicateComponentError,
    PluginError,
    UnknownComponentError,
    UnknownVersionError,
    brief,
    did_you_mean,
    shorten,
)

KINDS = ("flows", "conditioners", "priors", "models", "tasks", "optimizers", "schedulers")
FIRST_PARTY = frozenset(
    {"eddies-core", "eddies-flows", "eddies-conditioners", "eddies-priors", "eddies-models",
     "eddies-tasks", "eddies-engine"}
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ComponentConfig(BaseModel):
    """Base of every component's config: unknown fields are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True, arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Entry:
    """One registered component: what builds it, how it is configured, and where it came from."""

    kind: str
    name: str
    version: int
    target: Callable[..., Any]
    config: type[ComponentConfig]
    summary: str
    distribution: str | None = None
    distribution_version: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    overrides: str | None = None  # "<distribution> <version>" of the entry this one replaced

    @property
    def source(self) -> str:
        """``"<distribution> <version>"``, or ``"(local)"`` for a component no distribution provides."""
        return f"{self.distribution} {self.distribution_version}" if self.distribution else "(local)"

    @property
    def ref(self) -> str:
        """``name@version``, the fully pinned reference stored in checkpoints."""
        return f"{self.name}@{self.version}"

    def provenance(self) -> dict[str, Any]:
        """JSON-ready record of this entry, written into checkpoints."""
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "distribution_version": self.distribution_version,
        }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name@N`` into (name, version or None)."""
    name, sep, version = str(ref).partition("@")
    if not sep:
        return name, None
    if not version.isdigit():
        raise UnknownVersionError(f"version in {brief(ref)} must be an integer, as in '{shorten(name)}@1'")
    return name, int(version)


class Registry:
    """Named, versioned components of one kind; see the module docstring for the rules."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, dict[int, Entry]] = {}
        self._discovered = False
        self._loading: tuple[str, str] | None = None  # (distribution, version) during discovery
        self._broken: list[str] = []  # plug-ins that failed to import, as PluginError messages

    # registration -------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        version: int = 1,
        config: type[ComponentConfig] | None = None,
        summary: str = "",
        override: bool = False,
        **meta: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a class or factory under ``name@version``."""
        if not _NAME.match(name):
            raise ValueError(f"component name {name!r} must match {_NAME.pattern}")
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"version of {self.kind}/{name} must be a positive int, got {version!r}")
        config = config or ComponentConfig
        if config.model_config.get("extra") != "forbid":
            raise TypeError(f"config of {self.kind}/{name} must forbid extra fields (ComponentConfig)")

        def decorator(target: Callable[..., Any]) -> Callable[..., Any]:
            if override and not self._discovered:
                self._discover()  # what it replaces is registered first, whatever the import order
            versions = self._entries.setdefault(name, {})
            old = versions.get(version)
            if old is not None and not override:
                raise DuplicateComponentError(
                    f"{self.kind}/{name}@{version} is already registered by "
                    f"{old.distribution or old.target.__module__}; pass override=True to replace it"
                )
            dist, dist_version = self._loading or _distribution_of(target)
            entry = Entry(self.kind, name, version, target, config, summary.strip(), dist, dist_version, meta)
            if old is not None and old.distribution != dist:
                entry = replace(entry, overrides=old.source)
                warnings.warn(
                    f"eddies: {entry.source} overrides {self.kind}/{name}@{version} of {old.source}; "
                    f"recipes and checkpoints naming {name}@{version} now get {entry.source}'s component",
                    RuntimeWarning, stacklevel=2,
                )
            versions[version] = entry
            return target

        return decorator

    def unregister(self, name: str, version: int | None = None) -> None:
        """Remove one version (or all versions) of a component; used by tests and plug-in reloads."""
        if version is None:
            self._entries.pop(name, None)
        else:
            self._entries.get(name, {}).pop(version, None)
            if not self._entries.get(name):
                self._entries.pop(name, None)

    @contextmanager
    def scoped(self) -> Iterator[Registry]:
        """Restore the registry's contents on exit (for tests that register throwaway components)."""
        self._discover()
        saved = {n: dict(v) for n, v in self._entries.items()}
        try:
            yield self
        finally:
            self._entries = saved

    # lookup -------------------------------------------------------------------------------
    def get(self, ref: str) -> Entry:
        """The entry for ``name`` (latest version) or ``name@N``; errors suggest close names."""
        self._discover()
        name, version = parse_ref(ref)
        versions = self._entries.get(name)
        if not versions:
            names = sorted(self._entries)
            raise UnknownComponentError(
                f"unknown {self.kind} component {brief(name)}.{did_you_mean(name, names)} Registered {self.kind}: "
                f"{', '.join(names) if names else '(none)'}"
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            have = ", ".join(f"{name}@{v}" for v in sorted(versions))
            raise UnknownVersionError(
                f"{self.kind} component {brief(name)} has no version {version}; registered versions: {have}"
            )
        return versions[version]

    def __contains__(self, ref: str) -> bool:
        try:
            self.get(ref)
        except (UnknownComponentError, UnknownVersionError):
            return False
        return True

    def entries(self) -> list[Entry]:
        """Every registered entry, all versions, sorted by name then version."""
        self._discover()
        return [self._entries[n][v] for n in sorted(self._entries) for v in sorted(self._entries[n])]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    # discovery ----------------------------------------------------------------------------
    def _discover(self) -> None:
        if not self._discovered:
            self._discovered = True
            self._load_entry_points()
        if self._broken:
            raise PluginError("; ".join(self._broken))

    def _load_entry_points(self) -> None:
        """Import every module of group ``eddies.<kind>``, eddies' own first; record the ones that fail."""
        disabled = os.environ.get("EDDIES_DISABLE_PLUGINS", "").strip() not in ("", "0", "false")
        group = f"eddies.{self.kind}"
        for ep in sorted(metadata.entry_points(group=group), key=_third_party):
            dist = ep.dist.name if ep.dist is not None else None
            if disabled and _third_party(ep):
                continue
            self._loading = (dist, ep.dist.version if ep.dist is not None else None)
            try:
                ep.load()
            except (Exception, SystemExit) as err:  # sys.exit in a plug-in must not end the program silently
                reason = shorten(" ".join(str(err).split()), 200)  # on one line, bounded
                self._broken.append(
                    f"plug-in {ep.name} = {ep.value} of distribution {dist or 'unknown'} (entry point group "
                    f"{group}) failed while being imported: {type(err).__name__}: {reason}. Fix or "
                    f"uninstall {dist or 'it'}" + (", or set EDDIES_DISABLE_PLUGINS=1" if _third_party(ep) else "")
                )
            finally:
                self._loading = None


def _third_party(ep: metadata.EntryPoint) -> bool:
    return _canonical(ep.dist.name if ep.dist is not None else None) not in FIRST_PARTY


def _canonical(dist: str | None) -> str | None:
    return None if dist is None else re.sub(r"[-_.]+", "-", dist).lower()


@functools.lru_cache(maxsize=1)
def _entry_point_roots() -> tuple[tuple[str, str, str], ...]:
    """(module root, distribution, version) of every eddies entry point, read once."""
    return tuple(
        (ep.value.split(":")[0], ep.dist.name, ep.dist.version)
        for kind in KINDS
        for ep in metadata.entry_points(group=f"eddies.{kind}")
        if ep.dist is not None
    )


def _distribution_of(target: Callable[..., Any]) -> tuple[str | None, str | None]:
    """Find the distribution whose entry point covers the module defining ``target``."""
    module = getattr(target, "__module__", "") or ""
    for root, dist, version in _entry_point_roots():
        if module == root or module.startswith(root + "."):
            return dist, version
    return None, None


REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
FLOWS = REGISTRIES["flows"]
CONDITIONERS = REGISTRIES["conditioners"]
PRIORS = REGISTRIES["priors"]
MODELS = REGISTRIES["models"]
TASKS = REGISTRIES["tasks"]
OPTIMIZERS = REGISTRIES["optimizers"]
SCHEDULERS = REGISTRIES["schedulers"]


def get_registry(kind: str) -> Registry:
    """The registry of ``kind``; an unknown kind is an error listing the kinds."""
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise UnknownComponentError(
            f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}"
        ) from None


def register(kind: str, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@register("flows", "actnorm", version=1, config=..., summary=...)``; see :class:`Registry`."""
    return get_registry(kind).register(name, **kwargs)
