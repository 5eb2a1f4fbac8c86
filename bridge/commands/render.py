"""``riff-bridge render``: one clip from a prompt (or between two), to a WAV and optional PNG.

Also home of the options and helpers that ``interpolate`` shares (request, model, output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bridge.remote.options import add_engine_arguments, remote_engine

NAME = "render"
HELP = "Generate one clip with the diffusion model and write it as a WAV (and the image as PNG)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    add_request_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.0,
                        help="interpolation from --prompt/--seed (0) to --to-prompt/--to-seed (1)")
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="WAV file to write")
    parser.add_argument("--image", default=None, help="also write the spectrogram image (PNG)")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that make up a GenerationRequest (all but alpha)."""
    parser.add_argument("--prompt", required=True, help="text prompt (endpoint A)")
    parser.add_argument("--to-prompt", default=None, help="prompt of endpoint B (default: --prompt)")
    parser.add_argument("--seed", type=int, default=42, help="noise seed of endpoint A")
    parser.add_argument("--to-seed", type=int, default=None, help="noise seed of endpoint B")
    parser.add_argument("--negative", default="", help="negative prompt (what to steer away from)")
    parser.add_argument("--seed-image", default=None,
                        help="img2img from a built-in seed (grid, kick, pulse, silence, accent), an image or an audio file")
    parser.add_argument("--mask", default=None,
                        help="inpainting mask (keep-start, keep-end, keep-low, keep-high, or an image; "
                             "white is regenerated, black kept); needs --seed-image")
    parser.add_argument("--denoising", type=float, default=0.75, help="img2img strength in [0, 1]")
    parser.add_argument("--guidance", type=float, default=7.0, help="classifier-free guidance scale")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps")
    parser.add_argument("--scheduler", default="dpm",
                        help="dpm, ddim, pndm, euler or lms (a zero-terminal-SNR model: dpm, ddim or euler)")
    parser.add_argument("--bars", type=float, default=None, help="clip length in bars (needs --bpm)")
    parser.add_argument("--bpm", type=float, default=None, help="tempo (also of built-in drum grids)")
    parser.add_argument("--width", type=int, default=None,
                        help="image width in pixels (multiple of 8; instead of --bars; default 512)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, device, dtype and sample-rate options."""
    parser.add_argument("--model", default="riffusion/riffusion-model-v1",
                        help="Hugging Face id, local diffusers folder, .safetensors/.ckpt checkpoint, "
                             "or 'tiny' (small random model)")
    add_device_arguments(parser)
    parser.add_argument("--sample-rate", type=int, default=44100, choices=(44100, 48000),
                        help="output sample rate")
    add_engine_arguments(parser)  # remote worker (--engine URL, --token)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --dtype and --compile (shared by render, interpolate and serve)."""
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda, cuda:N or mps (every stage runs there, the codec too)")
    parser.add_argument("--dtype", default=None, choices=("fp32", "bf16", "fp16"),
                        help="weights dtype (default fp16 on GPU, fp32 on CPU; fp16 decodes fall back to fp32)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the UNet with channels-last weights (faster on GPU after a "
                             "slow first clip per loop length)")


def request_from_args(args: argparse.Namespace, alpha: float) -> Any:
    """The validated GenerationRequest the options describe, at ``alpha``."""
    from bridge.engine.request import GenerationRequest

    return GenerationRequest(
        prompt_a=args.prompt, prompt_b=args.to_prompt, seed_a=args.seed, seed_b=args.to_seed,
        alpha=alpha, negative=args.negative, guidance=args.guidance, denoising=args.denoising,
        steps=args.steps, scheduler=args.scheduler, seed_image=args.seed_image, mask=args.mask,
        width=args.width, bars=args.bars, bpm=args.bpm)


def check_writable(path: str | None, force: bool) -> Path | None:
    """``path`` as a Path, refusing an existing file unless ``force`` (InputFileError)."""
    from bridge.errors import InputFileError

    if path is None:
        return None
    out = Path(path)
    if out.exists() and not force:
        raise InputFileError(out, "already exists; pass --force to overwrite it")
    return out


def make_engine(args: argparse.Namespace) -> Any:
    """The diffusion engine for ``--model/--device/--dtype``; progress bars on a terminal;
    or the remote worker's client when ``--engine URL`` is given."""
    from bridge.engine.diffusion import DiffusionEngine

    remote = remote_engine(args)
    if remote is not None:
        return remote
    return DiffusionEngine(args.model, device=args.device, dtype=args.dtype,
                           progress=sys.stderr.isatty(), compile=args.compile)


def run(args: argparse.Namespace) -> int:
    """Validate everything, load the model, generate, write; returns 0."""
    from bridge.audio.wav import write_audio
    from bridge.engine.diffusion import DiffusionEngine, describe_timings

    request = request_from_args(args, args.alpha)
    DiffusionEngine.check_inputs(request)
    out, image_out = check_writable(args.out, args.force), check_writable(args.image, args.force)
    clip = make_engine(args).render(request, args.sample_rate)
    write_audio(out, clip.audio, args.sample_rate, overwrite=True)
    if image_out is not None:
        clip.image.save(image_out, exif=clip.image.getexif())
    print(f"wrote {out} ({clip.seconds:.3f} s, {clip.audio.shape[1]} ch, {args.sample_rate} Hz)"
          f"{f' and {image_out}' if image_out else ''}; {describe_timings(clip.timings)}")
    return 0
