"""Engine parts that need no model: noise, seeds, masks, splicing, requests, loading errors."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from bridge.engine.drums import DrumPattern
from bridge.engine.loader import ModelSpec, locate_model
from bridge.engine.mask import builtin_mask, mask_array
from bridge.engine.noise import lerp, seeded_noise, slerp
from bridge.engine.request import GenerationRequest
from bridge.engine.seeds import seed_image
from bridge.engine.splice import Splice, alphas
from bridge.errors import InputFileError, ModelUnavailableError, ParameterError


# -- noise ------------------------------------------------------------------------------

def test_seeded_noise_is_a_function_of_the_seed() -> None:
    assert torch.equal(seeded_noise(7, (1, 4, 8, 8)), seeded_noise(7, (1, 4, 8, 8)))
    assert not torch.equal(seeded_noise(7, (1, 4, 8, 8)), seeded_noise(8, (1, 4, 8, 8)))


def test_slerp_keeps_the_noise_norm_and_lerp_does_not() -> None:
    a, b = seeded_noise(1, (1, 4, 64, 50)), seeded_noise(2, (1, 4, 64, 50))
    for t in (0.25, 0.5, 0.75):
        mid = slerp(t, a, b)
        assert abs(mid.norm() / a.norm() - 1) < 0.01
    assert lerp(0.5, a, b).norm() / a.norm() < 0.75  # what slerp avoids
    unit_a, unit_b = a / a.norm(), b / b.norm()
    assert slerp(0.3, unit_a, unit_b).norm().item() == pytest.approx(1.0, abs=1e-5)


def test_interpolations_return_their_endpoints_exactly() -> None:
    a, b = seeded_noise(1, (2, 3)), seeded_noise(2, (2, 3))
    for interpolate in (slerp, lerp):
        assert torch.equal(interpolate(0.0, a, b), a)
        assert torch.equal(interpolate(1.0, a, b), b)
    assert torch.equal(slerp(0.5, a, a), a)  # parallel inputs fall back to lerp


# -- seed images and masks ----------------------------------------------------------------

def test_drum_pattern_hits_on_the_beat_grid() -> None:
    audio = DrumPattern("kick", bpm=120).render(88200)  # one bar at 120 BPM
    assert audio.shape == (88200,) and audio.dtype == np.float32
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-6)
    onsets = [i * 22050 for i in range(4)]
    for onset in onsets:  # energy right after each beat, much less just before the next
        assert np.abs(audio[onset:onset + 2000]).mean() > 5 * np.abs(audio[onset + 18000:onset + 22000]).mean()


def test_builtin_grid_seed_fits_the_request() -> None:
    request = GenerationRequest(bars=2, bpm=120)
    image = seed_image("grid", request)
    assert image.size == (request.generation_width(), 512) == (400, 512)
    assert image.mode == "RGB"
    assert seed_image("silence", GenerationRequest(width=256)).getextrema() == ((255, 255),) * 3


def test_pulse_seed_marks_the_beats_across_all_bands_and_nothing_between() -> None:
    request = GenerationRequest(bars=2, bpm=100)  # 60 columns a beat
    loudness = 255 - np.asarray(seed_image("pulse", request))[:, :, 0].astype(float)  # dark is loud
    width = request.generation_width()
    beats = np.arange(0, width, width // 8)
    on = loudness[:, [b + 1 for b in beats]]
    between = loudness[:, [b + 30 for b in beats]]
    assert between.max() == 0 and (on.mean(axis=1) > 40).mean() > 0.9  # every band, only on the beat
    grid_rows = (255 - np.asarray(seed_image("grid", request))[:, :, 0].astype(float)).mean(axis=1)
    pulse_rows = loudness.mean(axis=1)
    # no kick: the lowest bands (the image's bottom rows) hold a fraction of the kit's energy
    assert pulse_rows[-64:].mean() < 0.4 * grid_rows[-64:].mean()


def test_audio_and_image_files_are_seeds(tmp_path) -> None:
    from bridge.audio.wav import write_audio

    wav = write_audio(tmp_path / "beat.wav", DrumPattern("grid", 100).render(44100 * 3), 44100)
    request = GenerationRequest(width=256)
    from_audio = seed_image(str(wav), request)
    assert from_audio.size == (256, 512)
    png = tmp_path / "seed.png"
    from_audio.resize((512, 512)).save(png)
    assert seed_image(str(png), request).size == (256, 512)


def test_unknown_seed_image_and_missing_files_give_clear_errors(tmp_path) -> None:
    request = GenerationRequest(width=256)
    with pytest.raises(ParameterError, match="seed_image: expected a built-in name .*grid.*got 'nope'"):
        seed_image("nope", request)
    with pytest.raises(InputFileError, match="missing.wav: no such file"):
        seed_image(str(tmp_path / "missing.wav"), request)
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(InputFileError, match="junk.png: not a readable image"):
        seed_image(str(tmp_path / "junk.png"), request)
    with pytest.raises(ParameterError, match="mask: expected a built-in name"):
        mask_array("nope", 64, 512)


def test_builtin_masks_keep_their_black_region() -> None:
    low = builtin_mask("keep-low", 64, 512)
    assert (low[-128:] == 0).all() and (low[:-128] == 1).all()  # low frequencies at the bottom
    start = builtin_mask("keep-start", 64, 512)
    assert (start[:, :16] == 0).all() and (start[:, 16:] == 1).all()


def test_mask_files_are_read_as_white_regenerated(tmp_path) -> None:
    from PIL import Image

    image = Image.new("L", (100, 100), 255)
    image.paste(0, (0, 0, 50, 100))
    image.save(tmp_path / "m.png")
    mask = mask_array(str(tmp_path / "m.png"), 64, 512)
    assert mask.shape == (512, 64) and mask[:, 0].max() == 0 and mask[:, -1].min() == 1


# -- requests -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(alpha=1.5), "alpha: expected a number in [0, 1], got 1.5"),
    (dict(width=500), "width: expected a multiple of 8 in [64, 2048], got 500"),
    (dict(mask="keep-low"), "mask: expected a seed image to inpaint into"),
    (dict(steps=0), "steps: expected an integer in [1, 150], got 0"),
])
def test_bad_request_values_are_refused(changes, message) -> None:
    with pytest.raises(ParameterError) as err:
        GenerationRequest(**changes)
    assert message in str(err.value)


# -- splicing -------------------------------------------------------------------------------

def test_alphas_step_across_zero_to_one() -> None:
    assert alphas(1) == [0.0] and alphas(3) == [0.0, 0.5, 1.0]


def test_splice_is_exact_length_equal_power_and_click_free() -> None:
    splice = Splice(hop=1000, fade=100)
    fade_in, fade_out = splice.ramps()
    assert np.allclose(fade_in ** 2 + fade_out ** 2, 1.0)
    t = np.arange(splice.clip_samples)
    clips = [np.stack([np.sin(0.01 * (t + k * 1000))] * 2, axis=1) for k in range(3)]  # one continuous tone
    joined = splice.join(clips)
    assert joined.shape == (3000, 2)
    assert np.abs(np.diff(joined[:, 0])).max() < 0.03  # no jump anywhere
    with pytest.raises(ParameterError, match="clip length"):
        splice.join([np.zeros((10, 2))])


# -- loading --------------------------------------------------------------------------------

def test_missing_hub_model_says_what_where_and_how(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        locate_model("nobody/no-such-riffusion-model")
    message = str(err.value)
    assert time.perf_counter() - started < 5
    assert "'nobody/no-such-riffusion-model' is not available" in message
    assert constants.HF_HUB_CACHE in message and "--model PATH" in message and "hub" in message
    assert "\n" not in message


def test_missing_folder_and_incomplete_folder_are_clear(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        locate_model(str(tmp_path / "absent"))
    from bridge.engine.loader import load_model

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="empty: neither a diffusers folder .* nor a folder with a"):
        load_model(ModelSpec(str(tmp_path / "empty"), device="cpu"))


def test_model_spec_validates_device_and_dtype() -> None:
    with pytest.raises(ParameterError, match="device: expected one of auto, cpu"):
        ModelSpec(device="tpu")
    with pytest.raises(ParameterError, match="dtype: expected fp32 or bf16 on cpu"):
        ModelSpec(device="cpu", dtype="fp16").resolved_dtype("cpu")
    assert ModelSpec(device="cpu").resolved_dtype("cpu") == torch.float32
    assert ModelSpec(device="cpu", dtype="bf16").resolved_dtype("cpu") == torch.bfloat16
    with pytest.raises(ParameterError, match="device: expected one of auto, cpu, cuda, mps or cuda:N, got 'cuda:x'"):
        ModelSpec(device="cuda:x")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match=r"device: expected cpu \(no CUDA device is present\), got 'cuda:1'"):
            ModelSpec(device="cuda:1").resolved_device()


def test_help_does_not_import_torch() -> None:
    code = ("import sys; from bridge.cli import build_parser; build_parser(); "
            "assert not [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
