"""A deterministic stand-in for the diffusion model, for tests and demos without weights.

It draws a mel spectrogram procedurally (a kick on each beat, a chord whose pitches follow
the prompt and seed, blended by alpha) and decodes it with the real codec, so everything
after the model (codec, fitting, live playback) runs for real. With seed audio (the live
input) the clip is that audio stretched to the clip's length, mixed with the drawn clip in
proportion to ``denoising`` (0: the seed audio alone), as img2img would keep it.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

from bridge.audio.codec import SpectrogramCodec
from bridge.audio.image import encode_image
from bridge.engine.clip import Clip
from bridge.engine.protocol import CancelCheck, GenerationCancelled
from bridge.engine.request import GenerationRequest


class FakeEngine:
    """An :class:`~bridge.engine.protocol.Engine` that needs no model.

    ``delay`` seconds of simulated work per clip (checked for cancellation every 10 ms);
    ``fail_next`` makes the next ``generate`` raise RuntimeError (fault injection).
    """

    def __init__(self, codec: SpectrogramCodec | None = None, delay: float = 0.0,
                 iterations: int = 8) -> None:
        self.codec = codec or SpectrogramCodec(iterations=iterations)
        self.delay = delay
        self.fail_next = False
        self.calls = 0

    def generate(self, request: GenerationRequest, num_samples: int, sample_rate: int,
                 cancel: CancelCheck | None = None) -> Clip:
        """A clip of exactly ``num_samples`` frames (stereo) for ``request``."""
        self.calls += 1
        started = time.perf_counter()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("injected generation fault")
        self._wait(cancel)
        mel = self.draw_mel(request)
        model_seconds = time.perf_counter() - started
        audio = self.codec.mel_to_audio(mel, num_samples, sample_rate).cpu().numpy()
        stereo = np.repeat(audio.T, 2, axis=1).astype(np.float32)
        if request.seed_audio is not None:
            stereo = _blend_seed(request, stereo, num_samples)
        timings = {"model": model_seconds, "codec": time.perf_counter() - started - model_seconds}
        image = encode_image(mel, self.codec.params)
        return Clip(stereo, sample_rate, mel, image, request, timings)

    def _wait(self, cancel: CancelCheck | None) -> None:
        end = time.perf_counter() + self.delay
        while time.perf_counter() < end:
            if cancel is not None and cancel():
                raise GenerationCancelled("cancelled")
            time.sleep(min(0.01, max(0.0, end - time.perf_counter())))
        if cancel is not None and cancel():
            raise GenerationCancelled("cancelled")

    def draw_mel(self, request: GenerationRequest) -> np.ndarray:
        """``(1, n_mels, width)`` mel magnitude: beats on the request's grid, a seeded chord."""
        n_mels, width = self.codec.params.n_mels, request.generation_width()
        prompt_b, seed_b = request.target_b
        chord = (1 - request.alpha) * _chord(request.prompt_a, request.seed_a, n_mels) \
            + request.alpha * _chord(prompt_b, seed_b, n_mels)
        beat_px = 6000.0 / (request.bpm or 120.0)
        t = np.arange(width)
        pulse = np.exp(-((t % beat_px) / 6.0))
        kick = np.exp(-np.arange(n_mels) / 12.0)
        mel = chord[:, None] * (0.3 + 0.2 * np.cos(2 * np.pi * t / (4 * beat_px)))[None, :]
        mel = mel + kick[:, None] * pulse[None, :]
        return (mel[None] * self.codec.params.max_value * 0.5).astype(np.float32)


def _chord(prompt: str, seed: int, n_mels: int) -> np.ndarray:
    """Spectral envelope with three partial stacks chosen by prompt and seed."""
    rng = np.random.default_rng(zlib.crc32(prompt.encode()) ^ seed)
    envelope = np.zeros(n_mels)
    for root in rng.integers(40, 160, size=3):
        for harmonic in range(1, 5):
            bin_ = int(root * (1 + 0.35 * (harmonic - 1)))
            if bin_ < n_mels:
                envelope[bin_] += 1.0 / harmonic
    return envelope


def _blend_seed(request: GenerationRequest, drawn: np.ndarray, num_samples: int) -> np.ndarray:
    """``(1 - denoising) * seed audio (stretched to num_samples) + denoising * drawn``."""
    seed = np.asarray(request.seed_audio.audio, dtype=np.float32)  # type: ignore[union-attr]
    seed = seed[:, None] if seed.ndim == 1 else seed
    positions = np.linspace(0.0, len(seed) - 1, num_samples)
    fitted = np.stack([np.interp(positions, np.arange(len(seed)), seed[:, min(c, seed.shape[1] - 1)])
                       for c in range(2)], axis=1)
    return ((1.0 - request.denoising) * fitted + request.denoising * drawn).astype(np.float32)
