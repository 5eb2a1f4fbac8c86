"""The ``accent`` seed: the first pass's request, the beat envelope, the accented image, and
the engine painting it (tiny random model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bridge.engine.accent import DEPTH, MIN_STEPS, accent_image, beat_envelope, first_pass
from bridge.engine.request import GenerationRequest
from bridge.engine.seeds import seed_image
from bridge.errors import ParameterError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_first_pass_is_text_to_image_of_the_same_prompts_in_half_the_steps() -> None:
    request = GenerationRequest(prompt_a="bass line", prompt_b="house drums", alpha=0.3, seed_a=5, seed_b=6,
                                negative="drums", bars=2, bpm=100, steps=12, seed_image="accent",
                                mask="keep-low", denoising=0.5, guidance=5.0)
    first = first_pass(request)
    assert (first.seed_image, first.mask, first.seed_audio, first.denoising, first.steps) == (None, None, None, 1.0, 6)
    kept = ("prompt_a", "prompt_b", "alpha", "seed_a", "seed_b", "negative", "bars", "bpm", "guidance")
    assert all(getattr(first, name) == getattr(request, name) for name in kept)
    assert first_pass(request.with_changes(steps=5)).steps == MIN_STEPS


def test_beat_envelope_peaks_on_every_beat_from_the_bar_line_and_keeps_the_level() -> None:
    envelope = beat_envelope(480, 4.8, 100.0)  # 100 columns a second, a beat every 60 columns
    assert envelope.mean() == pytest.approx(1.0)
    beats = np.arange(0, 480, 60)
    assert np.all(envelope[beats] > 2.0 * envelope[beats + 40])  # loud on the beat, faded before the next
    assert np.allclose(envelope[beats], envelope[0])
    floor = (1 - DEPTH) / ((1 - DEPTH) + DEPTH * np.exp(-(np.arange(480) / 100.0 % 0.6) / 0.1)).mean()
    assert envelope.min() >= floor - 1e-9


def test_accent_image_moves_darkness_on_to_the_beat_without_changing_the_level() -> None:
    request = GenerationRequest(bars=2, bpm=100)
    width = request.generation_width()
    grey = Image.new("RGB", (width, 512), (180, 180, 180))
    out = 255.0 - np.asarray(accent_image(grey, request), np.float32)[:, :, 0]
    assert out.mean() == pytest.approx(75.0, rel=0.02)  # the level of the input (255 - 180)
    columns = out.mean(axis=0)
    per_beat = width / 8
    on = [columns[round(k * per_beat)] for k in range(8)]
    off = [columns[round((k + 0.7) * per_beat)] for k in range(8)]
    assert min(on) > 2.0 * max(off)
    assert accent_image(Image.new("RGB", (width, 512), (255, 255, 255)), request).getextrema() == ((255, 255),) * 3


def test_accent_without_an_engine_is_a_clear_error() -> None:
    with pytest.raises(ParameterError, match="seed_image: expected a seed image that needs no model here"):
        seed_image("accent", GenerationRequest(bars=2, bpm=100))


def test_engine_paints_the_accent_seed_from_its_own_first_pass(tiny_engine) -> None:
    request = GenerationRequest(prompt_a="funky synth solo", seed_a=3, bars=2, bpm=100, steps=8,
                                seed_image="accent", denoising=0.5)
    seed, mask = tiny_engine.inputs(request)
    assert mask is None and seed.size == (request.generation_width(), 512)
    first = tiny_engine.paint(first_pass(request))
    assert np.array_equal(np.asarray(seed), np.asarray(accent_image(first, request)))
    clip = tiny_engine.render(request)
    assert clip.audio.shape == (request.num_samples(44100), 2)
    assert clip.timings["inputs"] > 0.0


def test_cancel_reaches_the_accent_first_pass(tiny_engine) -> None:
    from bridge.engine.protocol import GenerationCancelled

    polls: list[int] = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 1

    request = GenerationRequest(prompt_a="x", bars=1, bpm=120, steps=8, seed_image="accent", denoising=0.5)
    with pytest.raises(GenerationCancelled):
        tiny_engine.render(request, cancel=cancel)
    assert len(polls) == 2  # stopped inside the first pass (4 steps), before the second began
