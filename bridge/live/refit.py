"""Refitting a loop to a new tempo: resample its spectrogram's time axis, recover audio again.

A clip keeps the mel spectrogram it was decoded from, so a tempo change needs no new
generation: the codec stretches the mel to the new bar length and runs phase recovery
(:meth:`~bridge.audio.codec.SpectrogramCodec.mel_to_audio` with an exact sample count).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from bridge.errors import BridgeError
from bridge.live.loop import Loop, LoopTempo
from bridge.timing import Meter, Tempo

#: Griffin-Lim iterations of a refit when the engine has no codec of its own.
DEFAULT_REFIT_ITERATIONS = 16


class Refitter:
    """Refits loops with ``codec`` (default: the engine's codec, else a new one, lazily)."""

    def __init__(self, codec: Any = None, iterations: int = DEFAULT_REFIT_ITERATIONS) -> None:
        self._codec = codec
        self.iterations = iterations

    @property
    def codec(self) -> Any:
        """The spectrogram codec (imports torch on first use)."""
        if self._codec is None:
            from bridge.audio.codec import SpectrogramCodec

            self._codec = SpectrogramCodec(iterations=self.iterations)
        return self._codec

    def refit(self, loop: Loop, tempo: LoopTempo) -> Loop:
        """``loop`` fitted to ``tempo`` (same serial, next version); raises BridgeError without a mel."""
        if loop.clip is None or loop.clip.mel is None:
            raise BridgeError(f"clip {loop.serial}: no spectrogram kept, cannot refit it")
        frames = Tempo(tempo.bpm, Meter(tempo.beats_per_bar)).bars_to_frames(loop.bars, tempo.sample_rate)
        started = time.perf_counter()
        audio = self.codec.mel_to_audio(loop.clip.mel, frames, tempo.sample_rate)
        audio = audio.cpu().numpy() if hasattr(audio, "cpu") else np.asarray(audio)
        audio = np.ascontiguousarray(np.atleast_2d(audio).T, dtype=np.float32)
        clip = replace(loop.clip, audio=audio, sample_rate=tempo.sample_rate,
                       timings={"refit": time.perf_counter() - started})
        return Loop.from_clip(clip, loop.bars, tempo, loop.serial, loop.tail, loop.version + 1, loop.request)
