#!/usr/bin/env python3
"""Train riff-bridge-mini: the same as ``riff-bridge train-mini`` (see its --help).

The shipped model was made with (from the repository root, about an hour on 2 shared cores):
    nice -n 10 .venv/bin/python scripts/train_mini.py --out bridge/models/mini --force
"""

import sys

from bridge.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-mini", *sys.argv[1:]]))
