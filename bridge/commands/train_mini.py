"""``riff-bridge train-mini``: train riff-bridge-mini from scratch on synthesized music (CPU).

The shipped model (bridge/models/mini) was made by the command recorded in its
``training.json``; running it again with the same options rebuilds the same data and
takes the same batches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "train-mini"
HELP = ("Train the small riff-bridge-mini model on FluidSynth-rendered loops (resumable; "
        "writes a diffusers folder for --model).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options (defaults: the shipped model's recipe)."""
    from bridge.mini.training import TrainConfig

    d = TrainConfig(out=Path("."), work=Path("."))
    parser.add_argument("--out", default="riff-bridge-mini", help="model folder to write (must not exist "
                        "unless --force)")
    parser.add_argument("--work", default=None, help="checkpoint folder (default OUT.work); a checkpoint "
                        "there is resumed (a finished one goes on when --unet-steps is larger)")
    parser.add_argument("--force", action="store_true", help="replace an existing model folder at --out")
    for name in ("data_seed", "loops", "seed", "vae_steps", "vae_batch", "unet_steps", "unet_batch",
                 "latent_crop", "threads", "attention_levels"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    parser.add_argument("--unet-lr", type=float, default=d.unet_lr)
    parser.add_argument("--zero-snr", action="store_true", help="velocity prediction on a zero-terminal-SNR "
                        "schedule (levels follow the prompt); on a checkpoint trained without it, the UNet "
                        "steps from there on fine-tune to it")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (with a checkpoint) after this "
                        "many optimisation steps in this run; run again to resume")
    parser.add_argument("--export", action="store_true", help="only write the model from the current "
                        "checkpoint (a look at a run in progress)")


def run(args: argparse.Namespace) -> int:
    """Train; refuses to overwrite an existing model folder without --force."""
    from bridge.errors import ParameterError
    from bridge.mini.training import TrainConfig, export, train

    out = Path(args.out)
    if (out / "model_index.json").exists() and not args.force:
        raise ParameterError("out", "a folder without a model (or --force to replace it)", str(out))
    work = Path(args.work) if args.work else out.with_name(out.name + ".work")
    config = TrainConfig(out=out, work=work, data_seed=args.data_seed, loops=args.loops, seed=args.seed,
                         vae_steps=args.vae_steps, vae_batch=args.vae_batch, unet_steps=args.unet_steps,
                         unet_batch=args.unet_batch, latent_crop=args.latent_crop, threads=args.threads,
                         unet_lr=args.unet_lr, attention_levels=args.attention_levels, zero_snr=args.zero_snr)
    folder = export(config) if args.export else train(config, args.stop_after)
    if folder is None:
        print(f"stopped after {args.stop_after} steps; checkpoint in {work} (run again to resume)")
        return 0
    print(f"wrote {folder}; use it with --model {folder}")
    return 0
