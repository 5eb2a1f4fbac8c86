"""riff-bridge-mini's parts: composer, captions, tokenizer, data rendering, measures, trainer."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from bridge.errors import ModelUnavailableError, ParameterError
from bridge.mini import evaluation as ev
from bridge.mini.composer import KICK, LoopSpec, loop_notes
from bridge.mini.vocabulary import CLASSES, build_tokenizer, sampled_caption, words


def test_every_caption_word_is_one_token_and_any_text_tokenizes() -> None:
    tokenizer = build_tokenizer()
    for word in words():
        assert len(tokenizer(word).input_ids) == 3, word  # start, word, end
    assert len(tokenizer("house drums with bass line").input_ids) == 7
    assert tokenizer.tokenize("dusty")[-1] == "y</w>"  # unknown words fall back to bytes


def test_loop_spec_rejects_bad_values_by_name() -> None:
    with pytest.raises(ParameterError, match="beats: expected 3 or 4, got 5"):
        LoopSpec(("rock",), 120.0, beats=5)
    with pytest.raises(ParameterError, match="parts"):
        LoopSpec(("tuba",), 120.0)
    with pytest.raises(ParameterError, match="bpm"):
        LoopSpec(("rock",), 20.0)


@pytest.mark.parametrize("beats", [3, 4])
def test_house_kick_lands_on_every_beat(beats: int) -> None:
    spec = LoopSpec(("house",), 125.0, beats=beats, seed=3)
    kicks = [start for start, _, channel, note, _ in loop_notes(spec, 4.0) if channel == 9 and note == KICK]
    beat = 60.0 / 125.0
    assert np.allclose(kicks, np.arange(len(kicks)) * beat)
    assert len(kicks) == int(4.0 / beat) + 1


def test_loops_are_reproducible_and_vary_with_the_seed() -> None:
    spec = LoopSpec(("piano", "bass"), 97.0, key=5, mood="dark", seed=11)
    assert loop_notes(spec, 5.0) == loop_notes(spec, 5.0)
    other = LoopSpec(("piano", "bass"), 97.0, key=5, mood="dark", seed=12)
    assert loop_notes(spec, 5.0) != loop_notes(other, 5.0)


def test_sampled_captions_keep_the_parts_and_sometimes_drop_all() -> None:
    spec = LoopSpec(("house", "bass"), 128.0, mood="dark")
    rng = random.Random(0)
    captions = [sampled_caption("house drums with bass line", spec, rng) for _ in range(400)]
    assert 0.05 < captions.count("") / 400 < 0.15
    assert all("drums with bass line" in c for c in captions if c)
    assert any(c.startswith("drums with bass line") for c in captions)


def test_measures_tell_a_beat_from_noise() -> None:
    rate, bpm = 44100, 100.0
    rng = np.random.default_rng(0)
    clicks = rng.normal(0, 0.01, rate * 4).astype(np.float32)
    for start in range(0, len(clicks) - 2000, round(rate * 60 / bpm)):
        clicks[start:start + 2000] += rng.normal(0, 0.5, 2000)
    noise = rng.normal(0, 0.3, rate * 4).astype(np.float32)
    assert ev.beat_autocorrelation(clicks, bpm) > 0.8
    assert ev.beat_autocorrelation(noise, bpm) < 0.3
    assert ev.beat_contrast(clicks, bpm) > 0.5 > abs(ev.beat_contrast(noise, bpm))


def test_drum_band_tells_vertical_hits_from_held_notes_and_profile_reads_rows() -> None:
    hits = np.full((512, 200), 255, np.uint8)
    hits[:, ::25] = 0  # broadband clicks
    held = np.full((512, 200), 255, np.uint8)
    held[100:104] = 0  # one sustained partial
    assert ev.drum_band(hits) > 0.8 > 0.2 > ev.drum_band(held)
    assert ev.profile(held)[51] == pytest.approx(0.5) and ev.profile(held)[0] == 0.0  # rows 408-411 from the bottom


def test_profile_position_reads_where_a_profile_lies_between_two_classes() -> None:
    start, end = np.zeros(ev.BANDS), np.linspace(0.0, 1.0, ev.BANDS)
    assert ev.profile_position(start, start, end) == pytest.approx(0.0)
    assert ev.profile_position(end, start, end) == pytest.approx(1.0)
    assert ev.profile_position(0.25 * end, start, end) == pytest.approx(0.25)
    assert ev.profile_position(-end, start, end) == pytest.approx(-1.0)
    # a change across the line (at right angles to it) does not move the position
    wobble = np.where(np.arange(ev.BANDS) % 2 == 0, 0.1, -0.1)
    across = wobble - (wobble @ end) / (end @ end) * end
    assert ev.profile_position(0.5 * end + across, start, end) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="profile_position: start and end profiles are equal"):
        ev.profile_position(end, end, end)


def test_mini_name_points_at_the_shipped_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bridge.engine.loader import locate_model
    from bridge.mini import architecture

    assert locate_model("mini") == architecture.shipped_model_dir()
    monkeypatch.setattr(architecture, "shipped_model_dir", lambda: tmp_path)
    with pytest.raises(ModelUnavailableError, match="train-mini"):
        locate_model("mini")


def test_unavailable_real_model_suggests_mini(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.engine.loader import locate_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="--model mini"):
        locate_model("nobody/no-such-model")


@pytest.mark.slow
def test_rendered_training_loops_are_spectrogram_images_with_their_beat() -> None:
    from bridge.mini.dataset import RATE, SEGMENT_SECONDS, image_rows, loop_specs, render_batch
    import tempfile

    pairs = [p for p in loop_specs(16, 1) if p[0] in ("rock drums", "ambient pad")]
    with tempfile.TemporaryDirectory() as work:
        clips = render_batch([spec for _, spec in pairs], Path(work))
    assert all(len(c) == round(SEGMENT_SECONDS * RATE) for c in clips)
    drums, pad = clips
    assert ev.beat_autocorrelation(drums, pairs[0][1].bpm) > 0.5
    image = image_rows(drums)
    assert image.shape == (512, 601) and image.dtype == np.uint8
    assert ev.drum_band(image) > 0.5 > 0.3 > ev.drum_band(image_rows(pad))


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [1, 3])  # inside the VAE phase; after both VAE steps and one UNet step
def test_training_resumes_to_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_after: int) -> None:
    """A run stopped after ``stop_after`` steps and resumed ends with the same weights as one run
    straight (every random draw comes from a generator seeded by its phase and step)."""
    import torch
    from safetensors.torch import load_file

    from bridge.mini.training import TrainConfig, train

    monkeypatch.setenv("RIFF_BRIDGE_CACHE", str(tmp_path / "cache"))
    small = dict(loops=16, vae_steps=2, vae_batch=1, unet_steps=3, unet_batch=2, encode_width=256,
                 latent_crop=16, checkpoint_every=100)
    straight = train(TrainConfig(out=tmp_path / "a", work=tmp_path / "a.work", **small))
    resumed_config = TrainConfig(out=tmp_path / "b", work=tmp_path / "b.work", **small)
    assert train(resumed_config, stop_after=stop_after) is None
    resumed = train(resumed_config)
    assert straight is not None and resumed is not None
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                 "vae/diffusion_pytorch_model.safetensors"):
        a, b = load_file(straight / part), load_file(resumed / part)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from bridge.engine.loader import ModelSpec, load_model

    parts = load_model(ModelSpec(str(resumed), device="cpu"))
    assert parts.vae_scale_factor == 8 and parts.vae.config.scaling_factor != 0.18215


@pytest.mark.slow
def test_a_finished_run_goes_on_when_given_more_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--unet-steps`` larger than a finished run's: it goes on from its last step (the losses
    say how many ran) and writes new weights."""
    import json

    import torch
    from safetensors.torch import load_file

    from bridge.mini.training import TrainConfig, train

    monkeypatch.setenv("RIFF_BRIDGE_CACHE", str(tmp_path / "cache"))
    small = dict(out=tmp_path / "a", work=tmp_path / "a.work", loops=16, vae_steps=2, vae_batch=1, unet_batch=2,
                 encode_width=256, latent_crop=16, checkpoint_every=100)
    name = "unet/diffusion_pytorch_model.safetensors"
    first = train(TrainConfig(unet_steps=2, **small))
    assert first is not None
    before = load_file(first / name)
    longer = train(TrainConfig(unet_steps=4, **small))
    saved = torch.load(tmp_path / "a.work" / "checkpoint.pt", weights_only=True)
    assert saved["phase"] == "done" and len(json.loads(saved["losses"])["unet"]) == 4
    assert longer is not None
    assert json.loads((longer / "training.json").read_text())["step"] == 4  # UNet steps trained
    after = load_file(longer / name)
    assert after.keys() == before.keys() and any(not torch.equal(after[k], before[k]) for k in after)
    again = train(TrainConfig(unet_steps=4, **small))  # nothing left to do: the same weights
    assert again is not None and all(torch.equal(load_file(again / name)[k], after[k]) for k in after)


@pytest.mark.slow
def test_zero_snr_training_saves_a_velocity_model_that_samples_from_pure_noise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``zero_snr``: SD's betas rescaled so the last timestep keeps no signal (SD's keeps 7 %),
    and the saved scheduler samples the model that way (DPM-Solver++, velocity, trailing
    spacing); the real loader and engine run it, img2img included."""
    import json

    from bridge.engine.diffusion import DiffusionEngine
    from bridge.engine.request import GenerationRequest
    from bridge.mini.training import TrainConfig, noise_schedule, train

    assert float(noise_schedule(True).alphas_cumprod[-1]) < 1e-9 < 0.004 < float(noise_schedule(False).alphas_cumprod[-1])
    monkeypatch.setenv("RIFF_BRIDGE_CACHE", str(tmp_path / "cache"))
    folder = train(TrainConfig(out=tmp_path / "z", work=tmp_path / "z.work", loops=16, vae_steps=2, vae_batch=1,
                               unet_steps=2, unet_batch=2, encode_width=256, latent_crop=16, zero_snr=True))
    assert folder is not None
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert config["_class_name"] == "DPMSolverMultistepScheduler"
    assert (config["prediction_type"], config["rescale_betas_zero_snr"], config["timestep_spacing"]) == (
        "v_prediction", True, "trailing")
    engine = DiffusionEngine(str(folder), device="cpu")
    for seed_image in (None, "accent"):
        clip = engine.render(GenerationRequest(prompt_a="house drums", steps=4, bars=1, bpm=120.0,
                                               seed_image=seed_image, denoising=0.5))
        assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() > 0.1
    with pytest.raises(ParameterError, match="scheduler.*zero terminal SNR.*pndm"):
        engine.render(GenerationRequest(prompt_a="house drums", steps=4, bars=1, bpm=120.0, scheduler="pndm"))


def _capture(audio: np.ndarray, first_bpm: float, last_bpm: float, change_frame: int) -> object:
    from bridge.capture import Capture

    frames = np.arange(0, len(audio), 1024)
    rows = [(f, 1, 1, 1, 1, 0, 1920, first_bpm if f < change_frame else last_bpm, 4) for f in frames]
    return Capture(np.repeat(audio[:, None], 2, axis=1), 0, np.array(rows, dtype=np.float64), 44100)


def test_demo_reports_beat_contrast_at_the_final_tempo() -> None:
    from bridge.demo import final_tempo_contrast

    rate, rng = 44100, np.random.default_rng(1)
    audio = rng.normal(0, 0.01, rate * 10).astype(np.float32)
    change = 3 * rate
    for start in range(change, len(audio) - 2000, round(rate * 0.6)):  # 100 BPM after the change
        audio[start:start + 2000] += rng.normal(0, 0.5, 2000)
    assert final_tempo_contrast(_capture(audio, 120.0, 100.0, change)) > 0.5
    assert final_tempo_contrast(_capture(audio, 120.0, 137.0, change)) < 0.3  # wrong tempo: no peak
    noise = rng.normal(0, 0.3, rate * 10).astype(np.float32)
    assert abs(final_tempo_contrast(_capture(noise, 120.0, 100.0, change))) < 0.3
