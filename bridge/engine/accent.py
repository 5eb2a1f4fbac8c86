"""The ``accent`` seed image: the prompt's own sound, accented on every beat of the tempo.

A drum-grid seed (``grid``, ``pulse``) puts the clip on the host's beat, but img2img keeps the
seed's overall level and frequency balance (the lowest spatial frequencies of a latent are the
last to be noised away), so every prompt comes out with the grid's spectrum under it. A model
that cannot follow a tempo from text (riff-bridge-mini draws its loops at whatever tempo it
likes) then has to choose between its own sound and the host's beat.

Recipe (``DiffusionEngine.inputs`` runs it; the request's own denoising then applies to the result):
  1. :func:`first_pass`: text-to-image of the same prompts, seeds, alpha, negative prompt and
     guidance, with no seed image or mask, in half the request's steps (at least
     :data:`MIN_STEPS`): the prompt's own level, timbre and texture;
  2. :func:`accent_image`: that image's darkness multiplied by a beat envelope at the request's
     tempo (a decaying accent from every beat, bar line first, normalised to mean 1 so the
     level is kept): onsets on the host's grid.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from bridge.engine.request import GenerationRequest

#: Share of the envelope that follows the beat (1 - DEPTH stays flat).
DEPTH = 0.8
#: Decay time constant of each beat's accent, seconds.
DECAY_SECONDS = 0.1
#: Fewest denoising steps of the first pass.
MIN_STEPS = 4
#: Tempo of requests without one (as the drum-grid seeds).
DEFAULT_BPM = 120.0


def first_pass(request: GenerationRequest) -> GenerationRequest:
    """The text-to-image request whose image :func:`accent_image` accents: ``request`` without
    seed image, seed audio or mask, at full denoising, in ``max(MIN_STEPS, steps // 2)`` steps."""
    return request.with_changes(seed_image=None, seed_audio=None, mask=None, denoising=1.0,
                                steps=max(MIN_STEPS, request.steps // 2))


def beat_envelope(width: int, seconds: float, bpm: float) -> np.ndarray:
    """``(width,)`` gains, mean 1, for ``width`` columns spanning ``seconds``: ``1 - DEPTH`` plus
    ``DEPTH`` times an exponential decay restarting on every beat from column 0 (the bar line)."""
    times = (np.arange(width) + 0.5) * seconds / width
    envelope = (1.0 - DEPTH) + DEPTH * np.exp(-(times % (60.0 / bpm)) / DECAY_SECONDS)
    return envelope / envelope.mean()


def accent_image(image: Image.Image, request: GenerationRequest, sample_rate: int = 44100) -> Image.Image:
    """``image`` (a spectrogram, white = silence) with its darkness scaled column by column by
    :func:`beat_envelope` at the request's tempo and clipped to black; RGB like the input."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    seconds = request.num_samples(sample_rate) / sample_rate
    gains = beat_envelope(pixels.shape[1], seconds, float(request.bpm or DEFAULT_BPM))
    darkness = np.clip((255.0 - pixels) * gains[None, :, None], 0.0, 255.0)
    return Image.fromarray(np.rint(255.0 - darkness).astype(np.uint8), "RGB")
