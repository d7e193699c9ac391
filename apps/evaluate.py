#!/usr/bin/env python
"""Command line: see `.venv/bin/python apps/evaluate.py --help` and docs/training.md."""

from eddies.engine.cli import evaluate_main, run

if __name__ == "__main__":
    run(evaluate_main)
