"""``riff-bridge audio2image``: any audio file to a Riffusion spectrogram image."""

from __future__ import annotations

import argparse

NAME = "audio2image"
HELP = "Convert an audio file to a Riffusion spectrogram image (PNG with EXIF parameters)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("input", help="audio file (WAV, FLAC, OGG...)")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--stereo", action="store_true", help="stereo image (G=left, B=right)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")


def run(args: argparse.Namespace) -> int:
    """Read, convert, write; returns 0."""
    from pathlib import Path

    from bridge.audio.codec import SpectrogramCodec
    from bridge.audio.params import SpectrogramParams
    from bridge.audio.wav import read_audio
    from bridge.errors import InputFileError

    audio, rate = read_audio(args.input)
    out = Path(args.output)
    if out.exists() and not args.force:
        raise InputFileError(out, "already exists; pass --force to overwrite it")
    image = SpectrogramCodec(SpectrogramParams(stereo=args.stereo)).audio_to_image(audio, rate)
    image.save(out, exif=image.getexif())
    print(f"wrote {out} ({image.width}x{image.height}, {'stereo' if args.stereo else 'mono'})")
    return 0
