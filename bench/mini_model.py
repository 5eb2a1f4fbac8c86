"""Benchmark: what the shipped riff-bridge-mini model does musically, through the real engine.

Per caption class, clips for --seeds seeds at --bpm (a tempo off the training grid's centre,
125 BPM), made as the demo makes them (``assessment.RECIPE``: the ``accent`` seed at the tempo,
denoising 0.5, 12 steps), against random latents decoded the same way (VAE and codec). Columns:
beat autocorrelation of the onset envelope at the beat period (clips, random images); the
class whose training-average frequency profile is nearest the clips' average; distance of the
clips to their nearest training image (pooled 8x8, best horizontal shift) against the median
nearest-neighbour distance between training images (all, and the class's own). Then the
negative prompt "drums" (drum band: the percussive share of the image's amplitude) and an
interpolation "piano chords" -> "house drums" (drum band, and where the clips' profile lies
between the two classes' training averages), and the generation real-time factor; then the
speed of one clip with the demo's recipe against the drum-grid one. Needs the training data (built and cached
on first use, about 15 minutes).

    .venv/bin/python bench/mini_model.py [--seeds 8] [--first-seed 1] [--bpm 100] [--steps 12] [--speed-steps 12,8]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bridge.engine.diffusion import DiffusionEngine
from bridge.mini import assessment as check
from bridge.mini.dataset import cached_dataset
from bridge.mini.vocabulary import CLASSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=1, help="the first of them (then one after another)")
    parser.add_argument("--bpm", type=float, default=100.0)
    parser.add_argument("--model", default="mini")
    parser.add_argument("--seed-image", default=check.RECIPE["seed_image"], help="built-in seed image the clips start from")
    parser.add_argument("--denoising", type=float, default=check.RECIPE["denoising"])
    parser.add_argument("--guidance", type=float, default=check.RECIPE["guidance"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--speed-steps", default="12,8", help="steps of the demo recipe's speed rows (comma-separated)")
    parser.add_argument("--classes", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--parts", default="table,conditioning,speed",
                        help="what to run: table, conditioning, speed (comma-separated)")
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    engine = DiffusionEngine(args.model, device="cpu")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    data = cached_dataset(480, 1)  # the shipped model's training loops (seed 1)
    if "table" in args.parts:
        table(engine, data, args, seeds)
    if "conditioning" in args.parts:
        conditioning(engine, data, args, seeds)
    if "speed" in args.parts:
        speed(engine, [int(steps) for steps in args.speed_steps.split(",")])


def recipe(args: argparse.Namespace) -> dict[str, object]:
    """The seed image, denoising, guidance and steps every clip is made with."""
    return {"seed_image": args.seed_image, "denoising": args.denoising, "guidance": args.guidance, "steps": args.steps}


def table(engine: DiffusionEngine, data: Any, args: argparse.Namespace, seeds: list[int]) -> None:
    classes = [c for c in args.classes.split(",") if c] or list(CLASSES)
    started = time.perf_counter()
    rows = check.class_table(engine, data, classes, seeds, args.bpm, **recipe(args))
    elapsed = time.perf_counter() - started
    print(f"\nclass table: {len(seeds)} seeds at {args.bpm:g} BPM, 2 bars, {args.steps} steps, {args.seed_image} seed, "
          f"denoising {args.denoising:g}, guidance {args.guidance:g}")
    print(f"{'class':<44} {'beat ac':>8} {'random':>8} {'nearest profile':<32} {'own?':>5} "
          f"{'nearest shape':<32} {'own?':>5} {'nearest train':>13} {'typical':>8} {'class typical':>13}")
    for r in rows:
        print(f"{r.name:<44} {r.beat_ac:8.3f} {r.random_beat_ac:8.3f} {r.nearest_class[:32]:<32} "
              f"{'yes' if r.nearest_class == r.name else 'NO':>5} {r.nearest_shape[:32]:<32} "
              f"{'yes' if r.nearest_shape == r.name else 'NO':>5} {r.nearest_train:13.1f} {r.typical_train:8.1f} "
              f"{r.class_typical_train:13.1f}")
    own = sum(r.nearest_class == r.name for r in rows)
    own_shape = sum(r.nearest_shape == r.name for r in rows)
    above = sum(r.beat_ac > r.random_beat_ac + 0.1 for r in rows)
    novel = sum(r.nearest_train > r.typical_train for r in rows)
    novel_class = sum(r.nearest_train > r.class_typical_train for r in rows)
    print(f"summary: beat ac > random + 0.1 in {above}/{len(rows)}; own profile nearest in {own}/{len(rows)} "
          f"(by shape {own_shape}/{len(rows)}); nearest training image farther than typical in "
          f"{novel_class}/{len(rows)} (the class's own typical; all training images' typical: {novel}/{len(rows)})")
    audio_seconds = len(rows) * len(seeds) * 2 * 4 * 60.0 / args.bpm
    print(f"class table generation: {elapsed:.1f} s for {audio_seconds:.1f} s of audio "
          f"(real-time factor {elapsed / audio_seconds:.3f}, measures included)")


def conditioning(engine: DiffusionEngine, data: Any, args: argparse.Namespace, seeds: list[int]) -> None:
    plain, negated = check.negative_effect(engine, "house drums with bass line", "drums", seeds, args.bpm, **recipe(args))
    print(f"\nnegative prompt 'drums' on 'house drums with bass line': drum band {plain:.3f} -> {negated:.3f} "
          f"({(negated / plain - 1) * 100:+.0f} %)")
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    steps = check.interpolation_steps(engine, data, "piano chords", "house drums", alphas, seeds, args.bpm,
                                      **recipe(args))
    print("\ninterpolation 'piano chords' -> 'house drums' (profile position: 0 at the piano chords "
          "training average, 1 at the house drums one)")
    print(f"{'alpha':>6} {'drum band':>10} {'profile position':>17}")
    for step in steps:
        print(f"{step.alpha:6.2f} {step.drum_band:10.3f} {step.position:17.3f}")
    for label, values in (("drum band", [s.drum_band for s in steps]), ("profile position", [s.position for s in steps])):
        print(f"{label}: {'monotonic' if (np.diff(values) > 0).all() else 'NOT monotonic'}")


def speed(engine: DiffusionEngine, demo_steps: list[int], repeats: int = 5, bpm: float = 124.0) -> None:
    """Seconds per 2-bar clip at ``bpm`` in this process (median of ``repeats`` after a warm-up)
    with the drum-grid recipe at 12 steps (the baseline) and with the demo's
    (``assessment.RECIPE``) at each of ``demo_steps``."""
    recipes = {"grid, denoising 0.75, 12 steps": {"seed_image": "grid", "denoising": 0.75, "steps": 12}}
    for steps in demo_steps:
        label = f"demo: {check.RECIPE['seed_image']}, denoising {check.RECIPE['denoising']:g}, {steps} steps"
        recipes[label] = {**check.RECIPE, "steps": steps}
    print(f"\nspeed: one 2-bar clip at {bpm:g} BPM, guidance 7, in this process (median of {repeats})")
    print(f"{'recipe':<42} {'seconds':>8} {'real-time factor':>17} {'vs grid':>8}  stages (s)")
    baseline = None
    for label, recipe_fields in recipes.items():
        times, stages = [], []
        for index in range(repeats + 1):
            started = time.perf_counter()
            clip = check.generate(engine, "house drums with bass line", index + 1, bpm, **recipe_fields)
            if index:
                times.append(time.perf_counter() - started)
                stages.append(clip.timings)
        seconds = float(np.median(times))
        baseline = baseline or seconds
        audio = len(clip.audio) / clip.sample_rate
        parts = ", ".join(f"{k} {np.median([t[k] for t in stages]):.2f}" for k in ("inputs", "unet", "vae", "codec"))
        print(f"{label:<42} {seconds:8.2f} {seconds / audio:17.3f} {seconds / baseline:8.2f}  {parts}")


if __name__ == "__main__":
    main()
