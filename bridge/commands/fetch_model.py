"""``riff-bridge fetch-model``: download and/or convert a model once, ahead of a session."""

from __future__ import annotations

import argparse

NAME = "fetch-model"
HELP = ("Download a hub model (what riff-bridge needs only) or convert a local folder or checkpoint "
        "to safetensors in the cache; prints the folder that loads.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("model", nargs="?", default="riffusion/riffusion-model-v1",
                        help="Hugging Face id, diffusers folder, or .safetensors/.ckpt checkpoint")


def run(args: argparse.Namespace) -> int:
    """Resolve, download and convert as needed; print the folder; returns 0."""
    import sys

    from bridge.engine.loader import prepare_model_folder, quiet_libraries

    quiet_libraries(progress=sys.stderr.isatty())
    folder = prepare_model_folder(args.model, progress=sys.stderr.isatty())
    print(f"{args.model}: ready at {folder} (load it with --model {args.model})")
    return 0
