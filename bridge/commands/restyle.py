"""``riff-bridge restyle``: bar-chunked img2img of a recording, as ``source = input`` does live."""

from __future__ import annotations

import argparse
import sys
from typing import Any

NAME = "restyle"
HELP = ("Restyle a recording loop by loop: each chunk of --bars bars at --bpm becomes img2img of itself "
        "with the prompt, back on its bars; the output has the input's exact length.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("input", help="audio file to restyle (WAV, FLAC, OGG, AIFF...)")
    parser.add_argument("output", help="WAV file to write (same length and sample rate as the input)")
    parser.add_argument("--prompt", required=True, help="text prompt (the style)")
    parser.add_argument("--to-prompt", default=None, help="prompt at alpha 1 (default: --prompt)")
    parser.add_argument("--alpha", type=float, default=0.0, help="interpolation towards --to-prompt/--to-seed")
    parser.add_argument("--seed", type=int, default=42, help="noise seed")
    parser.add_argument("--to-seed", type=int, default=None, help="noise seed at alpha 1")
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument("--bpm", type=float, required=True, help="tempo of the recording (20-400)")
    parser.add_argument("--bars", type=int, required=True, help="chunk length in bars (1-16), as the live loop")
    parser.add_argument("--beats-per-bar", type=int, default=4, help="meter: beats per bar (default 4)")
    parser.add_argument("--denoising", type=float, default=0.5,
                        help="img2img strength: 0 keeps the recording, 1 ignores it (default 0.5)")
    parser.add_argument("--guidance", type=float, default=7.0, help="classifier-free guidance scale")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--scheduler", default="dpm",
                        help="dpm, ddim, pndm, euler or lms (a zero-terminal-SNR model: dpm, ddim or euler)")
    parser.add_argument("--crossfade-ms", type=float, default=5.0, help="joint crossfade (ms), as the live loop")
    parser.add_argument("--model", default="riffusion/riffusion-model-v1",
                        help="Hugging Face id, local diffusers folder, or 'tiny' (small random model)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")


def _request(args: argparse.Namespace) -> Any:
    from bridge.engine.request import GenerationRequest
    from bridge.errors import check_int

    check_int("bars", args.bars, 1, 16)
    return GenerationRequest(
        prompt_a=args.prompt, prompt_b=args.to_prompt, seed_a=args.seed, seed_b=args.to_seed,
        alpha=args.alpha, negative=args.negative, guidance=args.guidance, denoising=args.denoising,
        steps=args.steps, scheduler=args.scheduler, bars=args.bars, bpm=args.bpm,
        beats_per_bar=args.beats_per_bar)


def run(args: argparse.Namespace) -> int:
    """Validate, load the model, restyle chunk by chunk, write; returns 0."""
    from bridge.audio.wav import read_audio, write_audio
    from bridge.commands.render import check_writable
    from bridge.engine.factory import load_engine
    from bridge.engine.restyler import Restyler

    request = _request(args)
    out = check_writable(args.output, args.force)
    audio, rate = read_audio(args.input)
    restyler = Restyler(load_engine(args.model, args.device), request, args.crossfade_ms)
    count = len(restyler.chunks(len(audio), rate))

    def report(chunk: Any, clip: Any) -> None:
        seconds = sum(getattr(clip, "timings", {}).values())
        print(f"chunk {chunk.index + 1}/{count}: bars {chunk.bar + 1}-{chunk.bar + args.bars}, "
              f"frames {chunk.start}-{chunk.stop} ({seconds:.2f} s)", file=sys.stderr, flush=True)

    restyled, chunks = restyler.restyle(audio, rate, report)
    channels = restyled[:, :1] if audio.shape[1] == 1 else restyled
    write_audio(out, channels, rate, overwrite=True)  # type: ignore[arg-type]
    print(f"wrote {out}: {len(restyled)} frames ({len(restyled) / rate:.3f} s, as the input), "
          f"{len(chunks)} chunks of {args.bars} bars at {args.bpm:g} BPM, denoising {args.denoising:g}")
    return 0
