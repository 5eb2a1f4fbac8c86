"""Restyling through the real diffusion pipeline (the tiny model, and the shipped mini model for
its trained VAE), without JACK: what an input loop becomes at denoising 0 and 0.3. FluidSynth renders the drum loops; onsets are compared on the
audio the engine returns for the live loop (2 bars at 90 BPM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.audio import song
from bridge.audio.onsets import envelope_correlation, onset_envelope, onset_offsets
from bridge.audio.wav import read_audio
from bridge.engine.request import GenerationRequest
from bridge.engine.seedaudio import SeedAudio

BPM, BARS, RATE = 90.0, 2, 44100
LOOP = round(BARS * 4 * 60 / BPM * RATE)


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("drums")
    out = {}
    for name in song.DRUM_LOOPS:
        audio, rate = read_audio(song.render(song.compose_drums(BPM, BARS + 1, name), folder / f"{name}.wav"))
        assert rate == RATE
        out[name] = audio[:LOOP]
    return out


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> object:
    from bridge.audio.codec import SpectrogramCodec
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine(str(tiny_model_dir), device="cpu", codec=SpectrogramCodec(iterations=16))


def _restyle(engine: object, name: str, audio: np.ndarray, denoising: float) -> np.ndarray:
    request = GenerationRequest(prompt_a="funk drums", seed_a=7, denoising=denoising, steps=10, bars=BARS,
                                bpm=BPM, seed_audio=SeedAudio(f"test:{name}", audio, RATE))
    clip = engine.generate(request, LOOP, RATE)  # type: ignore[attr-defined]
    assert clip.audio.shape == (LOOP, 2)
    return clip.audio


def test_denoising_zero_keeps_every_onset_within_10_ms(engine: object, loops: dict[str, np.ndarray]) -> None:
    report = {}
    for name, audio in loops.items():
        offsets = onset_offsets(audio, _restyle(engine, name, audio, 0.0))
        report[name] = (len(offsets), round(float(np.abs(offsets).max()) * 1000, 1))
        assert len(offsets) >= 6 and np.abs(offsets).max() <= 0.010, report
    print("denoising 0, tiny model: (onsets, max |offset| ms) per loop:", report)


def test_tiny_vae_round_trip_keeps_no_timing(engine: object, loops: dict[str, np.ndarray]) -> None:
    """Why the next test cannot pass with the tiny model: its VAE has random weights."""
    import torch

    from bridge.engine.diffusion import _image_tensor
    from bridge.engine.seedaudio import seed_audio_image

    seed = SeedAudio("vae", loops["backbeat"], RATE)
    image = _image_tensor(seed_audio_image(seed, 576, engine.codec))  # type: ignore[attr-defined]
    with torch.no_grad():
        decoded = engine.pipeline.decode(engine.pipeline.encode(image))  # type: ignore[attr-defined]
    before = (1 - (image[0].mean(0) + 1) / 2).mean(0).numpy()
    after = (1 - decoded[0].mean(0)).mean(0).numpy()
    r = float(np.corrcoef(np.diff(before), np.diff(after))[0, 1])
    print(f"tiny VAE encode->decode: correlation of column loudness changes {r:.3f}")
    assert abs(r) < 0.3


@pytest.mark.xfail(reason="tiny-v1 has a random-weight VAE: encode->decode keeps no timing (previous test), "
                          "so no denoising above 0 can keep the beat with it; needs a trained VAE", strict=False)
def test_denoising_point_three_follows_its_own_input_loop(engine: object, loops: dict[str, np.ndarray]) -> None:
    _check_each_follows_its_own_loop(engine, loops, "tiny")


def _check_each_follows_its_own_loop(engine: object, loops: dict[str, np.ndarray], model: str) -> None:
    """At denoising 0.3 each restyled loop's onset envelope correlates best with its own input."""
    report = {}
    for name, audio in loops.items():
        envelope = onset_envelope(_restyle(engine, name, audio, 0.3))
        scores = {other: envelope_correlation(envelope, onset_envelope(loop)) for other, loop in loops.items()}
        report[name] = {k: round(v, 3) for k, v in scores.items()}
    print(f"denoising 0.3, {model} model: onset-envelope correlation with each input loop:", report)
    assert all(max(scores, key=scores.get) == name for name, scores in report.items()), report


@pytest.fixture(scope="module")
def mini_engine() -> object:
    from bridge.audio.codec import SpectrogramCodec
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine("mini", device="cpu", codec=SpectrogramCodec(iterations=16))


def test_denoising_point_three_with_a_trained_vae_follows_its_own_input_loop(
        mini_engine: object, loops: dict[str, np.ndarray]) -> None:
    """The same check on the shipped mini model, whose VAE is trained: each restyled loop's
    onset envelope is nearest its own input loop's among the drum loops."""
    _check_each_follows_its_own_loop(mini_engine, loops, "mini")
