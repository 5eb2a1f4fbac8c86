"""``riff-bridge interpolate``: a long-form stream of related clips from prompt A to prompt B.

Clip k of N is generated at alpha k / (N - 1), each exactly the request's length plus a short
crossfade tail, and the clips are joined with equal-power crossfades at the bar lines, so
the file has no clicks and is exactly N clip lengths long.
"""

from __future__ import annotations

import argparse
import sys

from bridge.commands.render import (add_model_arguments, add_request_arguments, check_writable,
                                    make_engine, request_from_args)

NAME = "interpolate"
HELP = "Generate N clips stepping alpha from 0 to 1 and join them without clicks into one WAV."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    add_request_arguments(parser)
    parser.add_argument("--clips", type=int, required=True, help="number of clips (1 to 64)")
    parser.add_argument("--fade-ms", type=float, default=6.0, help="crossfade at each joint (ms)")
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="WAV file to write")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args: argparse.Namespace) -> int:
    """Validate, generate N clips, splice, write; returns 0."""
    from bridge.audio.wav import write_audio
    from bridge.engine.diffusion import DiffusionEngine
    from bridge.engine.splice import Splice, alphas
    from bridge.errors import check_int, check_range

    count = check_int("clips", args.clips, 1, 64)
    fade_ms = check_range("fade_ms", args.fade_ms, 0.0, 100.0)
    requests = [request_from_args(args, alpha) for alpha in alphas(count)]
    DiffusionEngine.check_inputs(requests[0])
    out = check_writable(args.out, args.force)
    rate = args.sample_rate
    splice = Splice(requests[0].num_samples(rate), round(fade_ms / 1000 * rate))
    engine = make_engine(args)
    clips = [engine.generate(r, splice.clip_samples, rate).audio for r in _progress(requests)]
    audio = splice.join(clips)
    write_audio(out, audio, rate, overwrite=True)
    print(f"wrote {out} ({len(audio) / rate:.3f} s: {count} clips of "
          f"{splice.hop / rate:.3f} s, alpha 0 to 1, {fade_ms:g} ms crossfades)")
    return 0


def _progress(requests: list) -> list:
    if not sys.stderr.isatty():
        return requests
    from tqdm.auto import tqdm

    return tqdm(requests, desc="clips")
