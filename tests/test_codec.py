"""The spectrogram codec against the reference images, real music, and hand-made images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.image import decode_image, encode_image
from bridge.audio.params import EXIF_TAGS, SpectrogramParams
from bridge.audio.quality import plain_mel_to_audio, spectral_convergence
from bridge.audio.resample import resample_rate, stretch_frames
from bridge.audio.song import compose, render
from bridge.audio.stft import Stft
from bridge.audio.wav import read_audio
from bridge.errors import InputFileError, ParameterError

CLIP2 = "test_data/clips/clip_2_start_103694_ms_duration_5678_ms.wav"
IMAGE2 = "test_data/images/clip_2_start_103694_ms_duration_5678_ms{}.png"


@pytest.fixture(scope="module")
def clip2(shared_dir: Path) -> np.ndarray:
    audio, rate = read_audio(shared_dir / CLIP2)
    assert rate == 44100
    return audio


@pytest.mark.parametrize("stereo,suffix", [(False, ""), (True, "_stereo")])
def test_audio2image_reproduces_reference_images(shared_dir, clip2, stereo, suffix):
    ours = SpectrogramCodec(SpectrogramParams(stereo=stereo)).audio_to_image(clip2, 44100)
    ref = Image.open(shared_dir / IMAGE2.format(suffix))
    assert ours.size == ref.size and ours.mode == ref.mode
    ours_exif, ref_exif = ours.getexif(), ref.getexif()
    for tag in EXIF_TAGS.values():
        assert float(ours_exif[tag]) == pytest.approx(float(ref_exif[tag]), rel=1e-6), tag
    diff = np.abs(np.asarray(ours, dtype=float) - np.asarray(ref, dtype=float)).mean()
    assert diff < 1.0


def test_stft_magnitude_matches_torch_stft():
    stft = Stft(4200, 210, 2100)
    audio = torch.randn(2, 21000, dtype=torch.float64)
    ref = torch.stft(audio, 4200, 210, 2100, torch.hann_window(2100, dtype=torch.float64),
                     center=True, pad_mode="reflect", return_complex=True).abs().transpose(-1, -2)
    torch.testing.assert_close(stft.magnitude(audio), ref)
    torch.testing.assert_close(stft.inverse(stft.forward(audio), 21000), audio)


def _music_clips(shared_dir: Path, tmp: Path) -> dict[str, np.ndarray]:
    song, _ = read_audio(render(compose(128, 4), tmp / "song.wav"))
    clip, _ = read_audio(shared_dir / CLIP2)
    return {"reference song": clip[:225351, 0], "fluidsynth GM": song[44100:269451, 0]}


def test_round_trip_converges_at_least_as_well_as_plain_recipe(shared_dir, tmp_path):
    codec = SpectrogramCodec()
    for name, audio in _music_clips(shared_dir, tmp_path).items():
        mel, _ = decode_image(codec.audio_to_image(audio, 44100))
        plain = spectral_convergence(mel[0], plain_mel_to_audio(mel, codec)[0], codec)
        ours = spectral_convergence(mel[0], codec.mel_to_audio(mel)[0], codec)
        assert ours <= plain * 1.01, (name, ours, plain)
        assert ours < 0.1, name


def _onset_autocorrelation(audio: np.ndarray) -> np.ndarray:
    """Autocorrelation (per 10 ms lag) of the positive spectral flux of ``audio``."""
    mag = Stft(4410, 441, 4410).magnitude(torch.as_tensor(audio, dtype=torch.float64))
    flux = torch.clamp(torch.diff(torch.log1p(mag * 100), dim=0), min=0).sum(dim=1).numpy()
    flux = flux - flux.mean()
    corr = np.correlate(flux, flux, mode="full")[len(flux) - 1:]
    return corr / corr[0]


def test_og_beat_decodes_to_a_clip_with_the_seed_beat(shared_dir):
    audio = SpectrogramCodec().image_to_audio(Image.open(shared_dir / "seed_images/og_beat.png"))
    assert audio.shape == (225351, 1)
    corr = _onset_autocorrelation(audio[:, 0])
    lag = 40 + int(np.argmax(corr[40:90]))  # search 0.4 - 0.9 s
    assert abs(lag * 0.01 - 60 / 93.75) <= 0.03, lag
    assert corr[lag] > 2 * np.abs(corr[lag // 2 + 8 : lag - 8]).mean()


def test_decoded_length_is_exact_at_any_target_and_rate():
    mel = np.random.default_rng(0).random((1, 512, 200)).astype(np.float32)
    codec = SpectrogramCodec(iterations=2)
    for samples, rate in ((192000, 48000), (176400, 44100), (12345, 48000)):
        assert codec.mel_to_audio(mel, samples, rate).shape == (1, samples)
    assert codec.mel_to_audio(mel).shape == (1, 199 * 441)


def test_batched_decoding_matches_single_clips():
    mels = np.random.default_rng(1).random((3, 1, 512, 64)).astype(np.float32)
    codec = SpectrogramCodec(iterations=4)
    batch = codec.mel_to_audio(mels)
    for i in range(3):
        torch.testing.assert_close(batch[i], codec.mel_to_audio(mels[i]), atol=1e-5, rtol=1e-4)


def test_stretch_frames_keeps_ends_and_resample_keeps_pitch():
    spec = torch.arange(10.0).reshape(1, 10).repeat(3, 1)
    out = stretch_frames(spec, 19)
    assert out.shape == (3, 19) and out[0, 0] == 0 and out[0, -1] == 9 and out[0, 2] == 1
    t = torch.arange(44100, dtype=torch.float64) / 44100
    up = resample_rate(torch.sin(2 * torch.pi * 1000 * t), 44100, 48000)
    assert up.shape[-1] == 48000
    assert int(torch.argmax(torch.fft.rfft(up).abs())) == 1000


def test_stereo_image_round_trip_keeps_channels_apart():
    rng = np.random.default_rng(2)
    left = rng.standard_normal(44100) * np.sin(np.linspace(0, 20, 44100)) * 0.3
    right = rng.standard_normal(44100) * 0.05
    codec = SpectrogramCodec(SpectrogramParams(stereo=True), iterations=4)
    image = codec.audio_to_image(np.stack([left, right], 1), 44100)
    red = np.asarray(image)[..., 0]
    assert red.max() == 0 and image.getexif()[EXIF_TAGS["stereo"]] == 1
    audio = codec.image_to_audio(image)
    assert audio.shape[1] == 2
    assert np.sqrt((audio[:, 0] ** 2).mean()) > 2 * np.sqrt((audio[:, 1] ** 2).mean())


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA"])
def test_hand_drawn_images_of_any_mode_and_width_decode(tmp_path, mode):
    drawing = np.full((300, 123), 255, dtype=np.uint8)
    drawing[200:210, :] = 0  # a low steady tone
    drawing[:, 50:53] = 40  # a click across all frequencies
    image = Image.fromarray(drawing, "L").convert(mode) if mode != "I;16" else \
        Image.fromarray(drawing.astype(np.uint16) * 257)
    path = tmp_path / "drawing.png"
    image.save(path)
    audio = SpectrogramCodec(iterations=4).image_to_audio(Image.open(path))
    assert audio.shape == (122 * 441, 1) and np.abs(audio).max() > 0.5


def test_jpeg_and_transparency(tmp_path):
    rgba = np.zeros((512, 64, 4), dtype=np.uint8)  # black but fully transparent: silence
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    audio = SpectrogramCodec(iterations=2).image_to_audio(Image.open(tmp_path / "clear.png"))
    assert np.abs(audio).max() == 0
    Image.fromarray(np.full((512, 64, 3), 128, np.uint8)).save(tmp_path / "grey.jpg")
    assert SpectrogramCodec(iterations=2).image_to_audio(Image.open(tmp_path / "grey.jpg")).shape == (63 * 441, 1)


def test_bad_images_and_audio_give_clear_errors(tmp_path):
    with pytest.raises(ParameterError, match="at least 2 px wide"):
        decode_image(Image.new("RGB", (1, 512)))
    with pytest.raises(ParameterError, match="image mode"):
        decode_image(Image.new("L", (10, 512)), stereo=True)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(InputFileError, match="text.wav: not a readable audio file"):
        read_audio(tmp_path / "text.wav")
    with pytest.raises(InputFileError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(ParameterError, match="mel: expected shape"):
        encode_image(np.zeros((2, 512, 10)), SpectrogramParams())


def test_params_validate_and_round_trip_through_exif():
    params = SpectrogramParams(stereo=True, max_value=123.0)
    assert SpectrogramParams.from_exif(params.to_exif()) == params
    assert (params.hop_length, params.win_length, params.n_fft) == (441, 4410, 17640)
    assert params.samples_for_width(512) == 225351
    with pytest.raises(ParameterError, match="n_mels: expected an integer in"):
        SpectrogramParams(n_mels=0)
    with pytest.raises(ParameterError, match="max_frequency"):
        SpectrogramParams(max_frequency=30000)
