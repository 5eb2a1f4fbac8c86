"""``riff-bridge demo``: the main job on embedded defaults (see README)."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "Run the demo session on embedded defaults and write its audio and images to --out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("--out", default="riff-demo", help="output folder (default ./riff-demo)")
    parser.add_argument("--bpm", type=float, default=120.0, help="tempo of the demo song")


def run(args: argparse.Namespace) -> int:
    """Render a FluidSynth song, encode it to spectrogram images, decode them back; report."""
    from bridge.demo import run_codec_demo

    return run_codec_demo(args.out, args.bpm)
