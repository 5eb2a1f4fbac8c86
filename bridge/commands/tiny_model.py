"""``riff-bridge tiny-model``: write the tiny random-weight Stable Diffusion to a folder."""

from __future__ import annotations

import argparse

NAME = "tiny-model"
HELP = "Build the tiny random-weight model (for tests and demos) and save it in diffusers layout."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("folder", nargs="?", default=None,
                        help="where to write it (default: the cache folder that --model tiny uses)")
    parser.add_argument("--force", action="store_true", help="replace an existing folder")


def run(args: argparse.Namespace) -> int:
    """Build and save; returns 0."""
    from pathlib import Path

    from bridge.engine.tiny import tiny_model_dir, write_tiny_model
    from bridge.errors import InputFileError

    folder = Path(args.folder) if args.folder else tiny_model_dir()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not args.force:
        raise InputFileError(folder, "already exists and is not empty; pass --force to replace it")
    write_tiny_model(folder)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"wrote {folder} ({size / 1e6:.1f} MB; load it with --model {folder})")
    return 0
