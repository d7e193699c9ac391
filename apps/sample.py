#!/usr/bin/env python
"""Command line: see `.venv/bin/python apps/sample.py --help` and docs/training.md."""

from eddies.engine.cli import run, sample_main

if __name__ == "__main__":
    run(sample_main)
