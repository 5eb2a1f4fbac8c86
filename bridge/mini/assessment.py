"""The mini model's musical checks, run through the real engine (:class:`DiffusionEngine`).

:func:`class_table`: per caption class, clips for several seeds at a tempo, generated as the
demo does (:data:`RECIPE`: img2img at denoising 0.5 from the ``accent`` seed, the prompt's
own sound accented on each beat of that tempo, bar-fitted), and for comparison random
latents decoded the same way (VAE, codec). Per class it reports the beat autocorrelation
(:mod:`~bridge.mini.evaluation`) of clips and of random images, the class whose
training-average frequency profile is nearest to the clips' average (by distance,
and by shape: level set aside), and the clips' distance to their nearest training image (the
nearest of all seeds' clips) against the typical nearest-neighbour distance between training
images: over all of them, and over the class's own (drum loops of one genre lie much closer
to each other than chords do, so the class's own is the like-for-like measure).
:func:`negative_effect` checks that negative prompts move the drum band, and
:func:`interpolation_steps` that prompt interpolation moves the clips' profile from one
class's towards the other's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bridge.mini import evaluation as ev

#: How clips are made (as ``riff-bridge demo`` makes them): seed image, denoising, guidance.
RECIPE: dict[str, Any] = {"seed_image": "accent", "denoising": 0.5, "guidance": 7.0}
#: Pooling (rows, columns) of images before nearest-neighbour search, and the shifts tried.
POOL = 8
SHIFT_STEP, MAX_SHIFT = 1, 15


@dataclass(frozen=True)
class ClassRow:
    """One row of :func:`class_table` (means over seeds)."""

    name: str
    beat_ac: float
    random_beat_ac: float
    nearest_class: str
    nearest_shape: str
    nearest_train: float
    typical_train: float
    class_typical_train: float


def generate(engine: Any, prompt: str, seed: int, bpm: float, steps: int = 12, **extra: Any) -> Any:
    """A 2-bar clip at ``bpm`` made with :data:`RECIPE` (``extra`` replaces its fields)."""
    return engine.render(clip_request(prompt, seed, bpm, steps, **extra))


def clip_request(prompt: str, seed: int, bpm: float, steps: int = 12, **extra: Any) -> Any:
    """The request of :func:`generate`: a 2-bar clip made with :data:`RECIPE`, with ``extra``
    fields replacing those."""
    from bridge.engine.request import GenerationRequest

    settings: dict[str, Any] = dict(prompt_a=prompt, seed_a=seed, bpm=bpm, bars=2, steps=steps, **RECIPE)
    settings.update(extra)
    return GenerationRequest(**settings)


def grey(clip: Any) -> np.ndarray:
    return np.asarray(clip.image.convert("RGB"))[:, :, 0]


def generate_image(engine: Any, prompt: str, seed: int, bpm: float, steps: int = 12, **extra: Any) -> np.ndarray:
    """The grey image :func:`generate` would make, without phase recovery (image measures only):
    the engine's own recipe steps 1-5."""
    from bridge.engine.canvas import Canvas
    from bridge.engine.stopwatch import Stopwatch

    request = clip_request(prompt, seed, bpm, steps, **extra)
    seed_image, mask = engine.inputs(request)
    canvas = Canvas(request.generation_width())
    seed_canvas, mask_canvas = canvas.pad_image(seed_image), canvas.pad_mask(mask)
    job = engine.job(request, seed_canvas, mask_canvas, Stopwatch(engine.components.device))
    pixels = engine.pipeline(job)
    image = canvas.crop(engine.finish_image(pixels, seed_canvas, mask_canvas))
    return np.asarray(image.convert("RGB"))[:, :, 0]


def random_clip(engine: Any, seed: int, bpm: float) -> tuple[np.ndarray, np.ndarray]:
    """(grey image, mono audio) of random latents decoded by the model's VAE and the codec,
    shaped like a 2-bar clip at ``bpm``."""
    import torch

    from bridge.engine.canvas import canvas_width
    from bridge.engine.request import GenerationRequest

    request = GenerationRequest(prompt_a="x", bpm=bpm, bars=2)
    width = request.generation_width()
    shape = engine.latent_shape(canvas_width(width))
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    pixels = engine.pipeline.decode(latents.to(engine.components.device, engine.components.dtype))
    image = engine.finish_image(pixels, None, None).crop((0, 0, width, shape[2] * 8))
    _, audio = engine.to_audio(image, request.num_samples(44100), 44100)
    return np.asarray(image)[:, :, 0], audio[:, 0]


def class_profiles(images: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Average :func:`~bridge.mini.evaluation.profile` of each class's training images."""
    out: dict[str, list[np.ndarray]] = {}
    for image, name in zip(images, names):
        out.setdefault(name, []).append(ev.profile(image))
    return {name: np.mean(rows, axis=0) for name, rows in out.items()}


def pooled(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // POOL, image.shape[1] // POOL
    return image[: h * POOL, : w * POOL].reshape(h, POOL, w, POOL).astype(np.float32).mean(axis=(1, 3))


def shifted_distance(image: np.ndarray, references: np.ndarray) -> float:
    """Smallest RMS distance (grey levels) between pooled ``image`` and pooled ``references``
    over horizontal shifts of the references (a copy at another offset still counts)."""
    width = image.shape[1]
    best = np.inf
    for shift in range(0, min(MAX_SHIFT, references.shape[2] - width) + 1, SHIFT_STEP):
        diff = references[:, :, shift:shift + width] - image[None]
        best = min(best, float(np.sqrt((diff ** 2).mean(axis=(1, 2))).min()))
    return best


def typical_distance(train_pooled: np.ndarray, width: int, sample: int = 64,
                     among: Sequence[int] | None = None) -> float:
    """Median over ``sample`` training images (evenly spread over ``among``, default all) of the
    distance to their nearest other training image."""
    pool = np.arange(len(train_pooled)) if among is None else np.asarray(among)
    picks = pool[np.linspace(0, len(pool) - 1, min(sample, len(pool))).astype(int)]
    distances = []
    for i in picks:
        others = np.delete(train_pooled, i, axis=0)
        distances.append(shifted_distance(train_pooled[i][:, :width], others))
    return float(np.median(distances))


def class_table(engine: Any, data: Any, classes: Sequence[str], seeds: Sequence[int], bpm: float,
                steps: int = 12, **extra: Any) -> list[ClassRow]:
    """The per-class table (module doc) for ``classes`` at ``bpm``."""
    profiles = class_profiles(data.images, data.names)
    train = np.stack([pooled(im) for im in data.images])
    randoms = [random_clip(engine, 10_000 + s, bpm) for s in seeds]
    random_ac = float(np.mean([ev.beat_autocorrelation(a, bpm) for _, a in randoms]))
    rows = []
    typical = None
    for name in classes:
        clips = [generate(engine, name, s, bpm, steps, **extra) for s in seeds]
        images = [grey(c) for c in clips]
        width = pooled(images[0]).shape[1]
        typical = typical if typical is not None else typical_distance(train, width)
        own = [i for i, n in enumerate(data.names) if n == name]
        mean_profile = np.mean([ev.profile(im) for im in images], axis=0)
        rows.append(ClassRow(
            name, float(np.mean([ev.beat_autocorrelation(c.audio[:, 0], bpm) for c in clips])), random_ac,
            ev.nearest_class(mean_profile, profiles), ev.nearest_shape(mean_profile, profiles),
            float(min(shifted_distance(pooled(im), train) for im in images)), typical,
            typical_distance(train, width, sample=16, among=own)))
    return rows


def negative_effect(engine: Any, prompt: str, negative: str, seeds: Sequence[int], bpm: float,
                    steps: int = 12, **extra: Any) -> tuple[float, float]:
    """Mean drum-band ratio of ``prompt`` clips without and with the ``negative`` prompt."""
    plain = [ev.drum_band(generate_image(engine, prompt, s, bpm, steps, **extra)) for s in seeds]
    negated = [ev.drum_band(generate_image(engine, prompt, s, bpm, steps, negative=negative, **extra)) for s in seeds]
    return float(np.mean(plain)), float(np.mean(negated))


@dataclass(frozen=True)
class InterpolationStep:
    """One alpha of :func:`interpolation_steps` (means over seeds)."""

    alpha: float
    drum_band: float
    position: float


def interpolation_steps(engine: Any, data: Any, prompt_a: str, prompt_b: str, alphas: Sequence[float],
                        seeds: Sequence[int], bpm: float, steps: int = 12, **extra: Any) -> list[InterpolationStep]:
    """Clips from ``prompt_a`` to ``prompt_b`` at each alpha (same seeds at both ends), with their
    mean drum band and where their mean profile lies between the two classes' training-average
    profiles in ``data`` (:func:`~bridge.mini.evaluation.profile_position`: 0 at ``prompt_a``'s,
    1 at ``prompt_b``'s)."""
    profiles = class_profiles(data.images, data.names)
    out = []
    for alpha in alphas:
        images = [generate_image(engine, prompt_a, s, bpm, steps, prompt_b=prompt_b, seed_b=s, alpha=alpha, **extra)
                  for s in seeds]
        mean_profile = np.mean([ev.profile(im) for im in images], axis=0)
        out.append(InterpolationStep(
            float(alpha), float(np.mean([ev.drum_band(im) for im in images])),
            ev.profile_position(mean_profile, profiles[prompt_a], profiles[prompt_b])))
    return out
