"""List registered components and the recipes, or show one component's config fields.

    .venv/bin/python apps/components.py                      # every kind
    .venv/bin/python apps/components.py list flows           # one kind (several may be given)
    .venv/bin/python apps/components.py list recipes         # the recipes, with their descriptions
    .venv/bin/python apps/components.py show flows/affine_coupling[@N]         # a table of its fields
    .venv/bin/python apps/components.py show --json flows/affine_coupling[@N]  # its JSON Schema
    .venv/bin/python apps/components.py --help               # this text

The listing gives kind, name@version, the distribution that provided it and its summary; a
plug-in that replaced another distribution's component (override=True) shows as
"fake-plugin 0.3.0 (overrides eddies-flows 0.1.0)", and a warning on stderr says the same.
`list recipes` names every recipe in recipes/ (or $EDDIES_RECIPES) with its description. `show`
prints the component, its distribution and summary, then one row per config field: the dotted
key, its type (``int >= 1``, ``conditioners spec``: a nested component), its default and its
description; ``show --json`` prints the config's JSON Schema (with defaults) instead. A wrong
command, or a plug-in that fails while it is imported, prints an ``error:`` line on stderr and
exits with status 2 (a wrong command also prints this text).
"""

from __future__ import annotations

import json
import sys

from eddies.core import KINDS, EddiesError, get_registry
from eddies.core.errors import did_you_mean
from eddies.core.recipe import list_recipes, recipes_dir
from eddies.core.spec import describe_config, field_table

RECIPES = "recipes"  # `list recipes`: not a component kind


def list_components(kinds: list[str]) -> str:
    """One aligned row per registered entry of ``kinds``: kind, name@version, distribution, summary."""
    rows = [("kind", "component", "distribution", "summary")]
    for kind in kinds:
        for e in get_registry(kind).entries():
            dist = e.source + (f" (overrides {e.overrides})" if e.overrides else "")
            rows.append((kind, e.ref, dist, e.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3] for row in rows
    )


def list_recipe_files() -> str:
    """One line per recipe file: its name (what ``recipe=NAME`` takes) and its description."""
    rows = list_recipes()
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join([f"recipes in {recipes_dir()}:", *(f"  {name.ljust(width)}  {text}".rstrip()
                                                      for name, text in rows)])


def _entry(ref: str):
    kind, sep, name = ref.partition("/")
    if not sep:
        raise EddiesError(f"show takes KIND/NAME[@N], e.g. flows/affine_coupling; got {ref!r}")
    return kind, get_registry(kind).get(name)


def show_fields(ref: str) -> str:
    """The component, its distribution and summary, then the table of its config fields."""
    kind, entry = _entry(ref)
    rows = describe_config(entry.config)
    head = f"{kind}/{entry.ref} ({entry.source}): {entry.summary}"
    return head + "\n\n" + (field_table(rows) if rows else "(no settings)")


def show_component(ref: str) -> str:
    """The component's config as JSON Schema (``show --json``), titled ``KIND/NAME@N``."""
    kind, entry = _entry(ref)
    schema = entry.config.model_json_schema(mode="validation")
    schema["title"] = f"{kind}/{entry.ref}"
    schema["description"] = entry.summary
    return json.dumps(schema, indent=2)


COMMANDS = ("list", "show")


def usage_error(argv: list[str]) -> str:
    """The ``error:`` line for a command line that is neither ``list [KIND ...]`` nor ``show REF``."""
    if argv[0] == "show":
        return f"show takes one KIND/NAME[@N], got {len(argv) - 1 - ('--json' in argv)} argument(s)"
    return f"unknown command {argv[0]!r}.{did_you_mean(argv[0], COMMANDS)} Commands: {', '.join(COMMANDS)}"


def components_main(argv: list[str]) -> int:
    """``apps/components.py`` and ``eddies components``: print, return the exit status (module docstring)."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        if not argv or argv == ["list"]:
            print(list_components(list(KINDS)))
        elif argv[0] == "list":
            kinds = [kind for kind in argv[1:] if kind != RECIPES]
            for kind in kinds:
                if kind not in KINDS:
                    raise EddiesError(f"unknown component kind {kind!r}.{did_you_mean(kind, (*KINDS, RECIPES))} "
                                      f"list takes kinds ({', '.join(KINDS)}) or {RECIPES}")
            print("\n\n".join(([list_components(kinds)] if kinds else [])
                               + ([list_recipe_files()] if RECIPES in argv[1:] else [])))
        elif argv[0] == "show" and len(argv) == 2 and argv[1] != "--json":
            print(show_fields(argv[1]))
        elif argv[0] == "show" and len(argv) == 3 and "--json" in argv:
            print(show_component(next(word for word in argv[1:] if word != "--json")))
        else:
            print(f"error: {usage_error(argv)}\n{__doc__}", file=sys.stderr)
            return 2
    except EddiesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0



__all__ = ["components_main", "list_components", "list_recipe_files", "show_component", "show_fields", "usage_error"]
