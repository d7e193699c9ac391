#!/usr/bin/env python
"""Command line: see `.venv/bin/python apps/train.py --help` and docs/training.md."""

from eddies.engine.cli import run, train_main

if __name__ == "__main__":
    run(train_main)
