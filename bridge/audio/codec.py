"""The spectrogram codec: audio <-> Riffusion mel magnitude <-> image, batched, on any device.

Encoding (audio -> image) is the reference recipe in float64: STFT (n_fft 17640, hop 441,
Hann 4410) of the audio in 16-bit sample units, HTK mel, then :func:`encode_image`.

Decoding (image -> audio), recipe:
  1. image -> mel magnitude (:func:`decode_image`), optionally stretched in time to fit an
     exact sample count;
  2. mel -> linear magnitude by the clamped pseudo-inverse, evaluated only on every 2nd
     bin of the 4x zero-padded reference FFT (a 2x padded window): half the bins, and the
     in-between bins that the narrow low mel filters read are still constrained;
  3. the band above ``max_frequency`` is empty, so phase recovery runs at a working rate of
     21 kHz (hop 210, window 2100, FFT 4200), 2.1x fewer samples than 44.1 kHz;
  4. phase-gradient initialisation + fast Griffin-Lim (:mod:`bridge.audio.phase`);
  5. band-limited resampling to the requested rate and exact length; peak normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import torch
from PIL import Image

from bridge.audio.image import decode_image, encode_image
from bridge.audio.mel import mel_filterbank, mel_pseudo_inverse
from bridge.audio.params import SpectrogramParams
from bridge.audio.phase import GriffinLim
from bridge.audio.resample import resample_rate, resample_to_length, stretch_frames
from bridge.audio.stft import Stft
from bridge.errors import ParameterError, check_int

#: Sample units of the reference converter (it fed int16 sample values to the STFT).
INT16_SCALE = 32768.0
#: Default Griffin-Lim iterations of our decoder (converges past the 32-iteration plain recipe).
DEFAULT_ITERATIONS = 40
#: Peak level of decoded clips (-1 dBFS).
PEAK_LEVEL = 10 ** (-1 / 20)


@dataclass(frozen=True)
class SpectrogramCodec:
    """Converts between audio and spectrogram images for one set of :class:`SpectrogramParams`.

    ``device`` is where the transforms run (``"cpu"``, ``"cuda"``...); ``iterations`` is the
    Griffin-Lim count; ``working_rate`` is the phase-recovery sample rate (a multiple of
    1000 / step_ms whose Nyquist frequency is above ``max_frequency``).
    """

    params: SpectrogramParams = SpectrogramParams()
    iterations: int = DEFAULT_ITERATIONS
    working_rate: int = 21000
    zero_padding: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("iterations", self.iterations, 0, 1000)
        frames_per_second = 1000 // self.params.step_ms
        if self.working_rate % frames_per_second or self.working_rate / 2 <= self.params.max_frequency:
            raise ParameterError(
                "working_rate",
                f"a multiple of {frames_per_second} Hz above {2 * self.params.max_frequency:g} Hz",
                self.working_rate,
            )

    # -- encoding -------------------------------------------------------------------------

    @cached_property
    def analysis(self) -> Stft:
        """The reference STFT (17640 / 441 / 4410 in v1)."""
        p = self.params
        return Stft(p.n_fft, p.hop_length, p.win_length)

    def mel_filters(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(n_freqs, n_mels)`` filterbank of the reference STFT on this codec's device."""
        p = self.params
        fb = mel_filterbank(self.analysis.n_freqs, p.sample_rate, p.n_mels,
                            float(p.min_frequency), float(p.max_frequency))
        return fb.to(device=self.device, dtype=dtype)

    def audio_to_mel(self, audio: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``(..., n_mels, frames)`` mel magnitude of ``(..., samples)`` audio in [-1, 1]."""
        samples = torch.as_tensor(audio, dtype=dtype, device=self.device) * INT16_SCALE
        magnitude = self.analysis.magnitude(samples)
        return torch.matmul(magnitude, self.mel_filters(dtype)).transpose(-1, -2)

    def audio_to_image(self, audio: np.ndarray, sample_rate: int) -> Image.Image:
        """Spectrogram image of ``(samples, channels)`` or ``(samples,)`` audio.

        Mono images take the first channel (as the reference converter); stereo images need
        ``params.stereo`` and duplicate a mono input. Audio at another rate is resampled.
        """
        channels = _channels_first(audio)
        if channels.shape[-1] == 0:
            raise ParameterError("audio", "at least 1 sample", "0 samples")
        if sample_rate != self.params.sample_rate:
            channels = resample_rate(torch.as_tensor(channels, dtype=torch.float64),
                                     sample_rate, self.params.sample_rate).numpy()
        wanted = self.params.channels
        channels = channels[:wanted] if channels.shape[0] >= wanted else np.repeat(channels, wanted, 0)
        mel = self.audio_to_mel(channels).cpu().numpy()
        return encode_image(mel, self.params)

    # -- decoding -------------------------------------------------------------------------

    @cached_property
    def synthesis(self) -> Stft:
        """The reduced phase-recovery STFT at the working rate (4200 / 210 / 2100 in v1)."""
        scale = self.working_rate / self.params.sample_rate
        win = round(self.params.win_length * scale)
        return Stft(win * self.zero_padding, round(self.params.hop_length * scale), win)

    @cached_property
    def _mel_to_linear(self) -> torch.Tensor:
        """``(n_mels, bins)`` pseudo-inverse on the synthesis STFT's bins (every ``step``-th)."""
        p, synth = self.params, self.synthesis
        ratio = p.n_fft / p.win_length / self.zero_padding
        if ratio != int(ratio) or ratio < 1:
            raise ParameterError("zero_padding", f"a divisor of n_fft / win_length = {p.n_fft / p.win_length:g}",
                                 self.zero_padding)
        step = int(ratio)
        pinv = mel_pseudo_inverse(self.analysis.n_freqs, p.sample_rate, p.n_mels,
                                  float(p.min_frequency), float(p.max_frequency))
        rows = pinv[:, ::step][:, : synth.n_freqs]
        gain = synth.win_length / p.win_length / INT16_SCALE
        return (rows * gain).to(device=self.device, dtype=torch.float32)

    def mel_to_audio(
        self, mel: torch.Tensor | np.ndarray, num_samples: int | None = None,
        sample_rate: int | None = None, normalize: bool = True, stop: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Audio ``(..., samples)`` from a ``(..., n_mels, width)`` mel magnitude.

        ``stop``: called now and then during phase recovery; it may raise to abandon the work.

        ``num_samples`` (at ``sample_rate``, default the params' rate) fixes the exact length:
        the spectrogram is stretched in time to fit it. Default length is (width - 1) * hop at
        the params' rate, scaled to ``sample_rate``. Leading axes are a batch.
        """
        p = self.params
        mel = torch.as_tensor(mel, dtype=torch.float32, device=self.device)
        rate = sample_rate or p.sample_rate
        if num_samples is None:
            num_samples = round(p.samples_for_width(mel.shape[-1]) * rate / p.sample_rate)
        if num_samples < 1:
            raise ParameterError("num_samples", "at least 1", num_samples)
        at_params_rate = num_samples * p.sample_rate / rate
        mel = stretch_frames(mel, int(at_params_rate // p.hop_length) + 1)
        linear = torch.matmul(mel.transpose(-1, -2), self._mel_to_linear).clamp_(min=0.0)
        working_length = max(1, round(at_params_rate * self.working_rate / p.sample_rate))
        audio = resample_to_length(self._recover(linear, working_length, stop), num_samples)
        return _normalized(audio) if normalize else audio

    def _recover(self, linear: torch.Tensor, length: int, stop: Callable[[], None] | None = None) -> torch.Tensor:
        """Phase recovery of ``(..., frames, bins)``; one spectrogram at a time on CPU (batching
        there only thrashes the caches: 4x slower per clip), the whole batch on accelerators."""
        phase = GriffinLim(self.synthesis, self.iterations)
        if linear.device.type != "cpu" or linear.ndim < 3:
            return phase(linear, length, stop)
        flat = linear.reshape(-1, *linear.shape[-2:])
        audio = torch.stack([phase(item, length, stop) for item in flat])
        return audio.reshape(*linear.shape[:-2], length)

    def image_to_audio(
        self, image: Image.Image, num_samples: int | None = None, sample_rate: int | None = None,
        stereo: bool | None = None,
    ) -> np.ndarray:
        """``(samples, channels)`` float32 audio of a spectrogram image (see :meth:`mel_to_audio`)."""
        mel, params = decode_image(image, stereo=stereo)
        if params.with_changes(stereo=False, max_value=1.0) != self.params.with_changes(stereo=False, max_value=1.0):
            return SpectrogramCodec(params.with_changes(stereo=False), self.iterations,
                                    self.working_rate, self.device).image_to_audio(
                                        image, num_samples, sample_rate, stereo)
        audio = self.mel_to_audio(mel, num_samples, sample_rate)
        return audio.T.cpu().numpy().astype(np.float32)


def _channels_first(audio: np.ndarray) -> np.ndarray:
    """``(channels, samples)`` float64 view of ``(samples,)`` or ``(samples, channels)``."""
    array = np.asarray(audio, dtype=np.float64)
    return array[None, :] if array.ndim == 1 else array.T


def _normalized(audio: torch.Tensor) -> torch.Tensor:
    """Each leading-axis group (a clip, all its channels) scaled to a peak of -1 dBFS."""
    peak = audio.abs().amax(dim=-1, keepdim=True)
    if audio.ndim > 1:
        peak = peak.amax(dim=-2, keepdim=True)
    return audio * (PEAK_LEVEL / peak.clamp(min=1e-9))
