"""``riff-bridge image2audio``: a spectrogram image (generated or hand-drawn) to audio."""

from __future__ import annotations

import argparse

NAME = "image2audio"
HELP = "Convert a spectrogram image (any width, RGB/grey/RGBA) to a WAV file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("input", help="image file (PNG, JPEG...)")
    parser.add_argument("output", help="WAV to write")
    parser.add_argument("--iterations", type=int, default=None,
                        help="Griffin-Lim iterations (default 56)")
    parser.add_argument("--sample-rate", type=int, default=44100, choices=(44100, 48000),
                        help="output sample rate")
    parser.add_argument("--stereo", action=argparse.BooleanOptionalAction, default=None,
                        help="read G/B as left/right (default: from the image's EXIF)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args: argparse.Namespace) -> int:
    """Read, decode, write; returns 0."""
    from pathlib import Path

    from bridge.audio.codec import DEFAULT_ITERATIONS, SpectrogramCodec
    from bridge.audio.image import load_image
    from bridge.audio.wav import write_audio
    from bridge.errors import InputFileError, ParameterError

    image = load_image(args.input)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputFileError(out, "already exists; pass --force to overwrite it")
    iterations = DEFAULT_ITERATIONS if args.iterations is None else args.iterations
    try:
        audio = SpectrogramCodec(iterations=iterations).image_to_audio(
            image, sample_rate=args.sample_rate, stereo=args.stereo)
    except ParameterError as err:
        raise InputFileError(args.input, str(err)) from None
    write_audio(out, audio, args.sample_rate, overwrite=True)
    print(f"wrote {out} ({audio.shape[0] / args.sample_rate:.3f} s, {audio.shape[1]} ch, {args.sample_rate} Hz)")
    return 0
