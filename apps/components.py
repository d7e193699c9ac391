#!/usr/bin/env python
"""Command line: see `.venv/bin/python apps/components.py --help` and docs/registry-and-recipes.md."""

import sys

from eddies.engine import components as _command
from eddies.engine.components import components_main, list_components, show_component, show_fields  # noqa: F401

__doc__ = _command.__doc__  # the usage text, as --help and a wrong command print it
main = components_main

if __name__ == "__main__":
    sys.exit(components_main(sys.argv[1:]))
