"""``riff-bridge demo``: the main job on embedded defaults (see README)."""

from __future__ import annotations

import argparse

from bridge.live.server import PRIVATE_PERIOD

NAME = "demo"
HELP = ("Scripted live session on embedded defaults (the shipped mini model, private JACK server when none runs); "
        "writes the recording to --out and prints a summary.")
#: Largest bar-alignment error (frames) the demo passes with.
ALIGNMENT_TOLERANCE = 256
#: Periods the private server may run at (powers of two JACK accepts).
PERIODS = (64, 128, 256, 512, 1024, 2048, 4096)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("--out", default="riff-demo", help="output folder (default ./riff-demo)")
    parser.add_argument("--model", default="mini", help="mini (default: the small shipped model), tiny "
                        "(random weights), fake, a diffusers folder or hub id")
    parser.add_argument("--bpm", type=float, default=120.0, help="starting tempo")
    parser.add_argument("--bars", type=int, default=2, help="loop length in bars")
    parser.add_argument("--clips", type=int, default=9, help="new clips to play before stopping")
    parser.add_argument("--period", type=int, default=PRIVATE_PERIOD, choices=PERIODS,
                        help=f"frames per period of the private JACK server, when one is started "
                             f"(default {PRIVATE_PERIOD})")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its table; exit 1 when a clip missed the bar grid, riff-bridge's
    callback overran (xruns caused by other clients, the demo's recorder included, are
    reported, not failed on) or clips were missing."""
    from bridge.demo import print_summary, run_demo

    result = run_demo(args.out, args.model, args.bpm, args.bars, args.clips, period=args.period)
    print_summary(result)
    ok = (result.max_alignment_frames <= ALIGNMENT_TOLERANCE and result.overruns == 0
          and result.clips_played >= args.clips)
    return 0 if ok else 1
