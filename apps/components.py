"""List registered components, or show one component's config as JSON Schema.

    .venv/bin/python apps/components.py                      # every kind
    .venv/bin/python apps/components.py list flows           # one kind
    .venv/bin/python apps/components.py show flows/affine_coupling[@N]
    .venv/bin/python apps/components.py --help               # this text

The listing gives kind, name@version, the distribution that provided it and its summary; a
plug-in that replaced another distribution's component (override=True) shows as
"fake-plugin 0.3.0 (overrides eddies-flows 0.1.0)", and a warning on stderr says the same. `show`
prints the config's JSON Schema (with defaults) and the component's docstring summary. A wrong
command, or a plug-in that fails while it is imported, prints an ``error:`` line on stderr and
exits with status 2 (a wrong command also prints this text).
"""

from __future__ import annotations

import json
import sys

from eddies.core import KINDS, EddiesError, get_registry
from eddies.core.errors import did_you_mean


def list_components(kinds: list[str]) -> str:
    rows = [("kind", "component", "distribution", "summary")]
    for kind in kinds:
        for e in get_registry(kind).entries():
            dist = e.source + (f" (overrides {e.overrides})" if e.overrides else "")
            rows.append((kind, e.ref, dist, e.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3] for row in rows
    )


def show_component(ref: str) -> str:
    kind, sep, name = ref.partition("/")
    if not sep:
        raise EddiesError(f"show takes KIND/NAME[@N], e.g. flows/affine_coupling; got {ref!r}")
    entry = get_registry(kind).get(name)
    schema = entry.config.model_json_schema(mode="validation")
    schema["title"] = f"{kind}/{entry.ref}"
    schema["description"] = entry.summary
    return json.dumps(schema, indent=2)


COMMANDS = ("list", "show")


def usage_error(argv: list[str]) -> str:
    """The ``error:`` line for a command line that is neither ``list [KIND ...]`` nor ``show REF``."""
    if argv[0] == "show":
        return f"show takes one KIND/NAME[@N], got {len(argv) - 1} argument(s)"
    return f"unknown command {argv[0]!r}.{did_you_mean(argv[0], COMMANDS)} Commands: {', '.join(COMMANDS)}"


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        if not argv or argv == ["list"]:
            print(list_components(list(KINDS)))
        elif argv[0] == "list":
            for kind in argv[1:]:
                get_registry(kind)  # unknown kinds fail with the list of kinds
            print(list_components(argv[1:]))
        elif argv[0] == "show" and len(argv) == 2:
            print(show_component(argv[1]))
        else:
            print(f"error: {usage_error(argv)}\n{__doc__}", file=sys.stderr)
            return 2
    except EddiesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
