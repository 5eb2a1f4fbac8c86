"""``riff-bridge presets``: list the factory and user presets, or print one."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "presets"
HELP = "List presets (factory and user folders) or show one as TOML."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``presets [NAME] [--presets-dir DIR]``."""
    parser.add_argument("name", nargs="?", help="a preset to print (default: list them all)")
    parser.add_argument("--presets-dir", type=Path, default=None, help="user presets folder")


def run(args: argparse.Namespace) -> int:
    """Print the list or the preset; returns 0."""
    from bridge.control.presets import PresetStore

    store = PresetStore(args.presets_dir)
    if args.name:
        print(store.find(args.name).read_text(encoding="utf-8"), end="")
        return 0
    for name, origin in store.names().items():
        print(f"{name:24} {origin:8} {store.load(name).description}")
    print(f"\nuser folder: {store.user_dir}\nfactory folder: {store.factory_dir}")
    return 0
