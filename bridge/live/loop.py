"""A clip made ready for the realtime player: N bars of stereo audio plus a reflected tail.

The player reads a loop's ``audio`` directly in the JACK process callback, so everything
the callback needs is computed here, outside it: channel-first float32 frames, and
``tail`` extra frames after the last one so that a crossfade (or a bar line arriving a few
frames late) always has material to read. The tail mirrors the clip's end around its last
sample (numpy ``reflect`` mode), so it continues the waveform without a jump; it is only
ever heard fading out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.audio.channels import stereo
from bridge.engine.clip import Clip
from bridge.errors import ParameterError, check_int

#: Frames a loop may play past its end (bar line late by rounding) before it wraps itself.
SLACK_FRAMES = 64


@dataclass(frozen=True)
class LoopTempo:
    """The grid a loop was fitted to: tempo, meter and sample rate."""

    bpm: float
    beats_per_bar: int
    sample_rate: int

    def matches(self, other: "LoopTempo") -> bool:
        """Same grid within 0.005 BPM."""
        return (self.beats_per_bar == other.beats_per_bar and self.sample_rate == other.sample_rate
                and abs(self.bpm - other.bpm) < 0.005)


@dataclass(frozen=True, eq=False)
class Loop:
    """``bars`` bars of stereo audio (``frames`` long) fitted to ``tempo``, ready to play.

    ``audio`` is ``(2, frames + tail)`` float32, C-contiguous and read-only; ``serial``
    names the clip (a refit of the same clip keeps it and raises ``version``); ``clip``
    is the engine's clip it came from (its mel spectrogram is what a refit resamples).
    """

    audio: np.ndarray
    frames: int
    bars: int
    tempo: LoopTempo
    serial: int
    version: int = 0
    clip: Clip | None = None
    request: object = None

    def __post_init__(self) -> None:
        check_int("bars", self.bars, 1, 16)
        if self.audio.ndim != 2 or self.audio.shape[0] != 2 or self.audio.shape[1] < self.frames:
            raise ParameterError("audio", f"(2, >= {self.frames}) frames", self.audio.shape)

    @classmethod
    def from_clip(cls, clip: Clip, bars: int, tempo: LoopTempo, serial: int, tail: int,
                  version: int = 0, request: object = None) -> "Loop":
        """Wrap ``clip`` (its whole length is the loop) with a reflected tail of ``tail`` frames."""
        audio = np.ascontiguousarray(stereo(clip.audio).T)
        return cls(_with_tail(audio, tail), audio.shape[1], bars, tempo, serial, version, clip,
                   request if request is not None else clip.request)

    @property
    def tail(self) -> int:
        """Frames of reflected tail after the loop's end."""
        return int(self.audio.shape[1] - self.frames)

    def bar_frame(self, bar_in_loop: int) -> int:
        """Frame inside the loop where its bar ``bar_in_loop`` (0-based) starts."""
        return round(bar_in_loop * self.frames / self.bars)

    def seconds(self) -> float:
        """Length of the loop (without tail) in seconds."""
        return self.frames / self.tempo.sample_rate


def _with_tail(audio: np.ndarray, tail: int) -> np.ndarray:
    """``audio`` followed by its end reflected around the last sample, ``tail`` frames (read-only)."""
    frames = audio.shape[1]
    if frames < tail + 2:
        raise ParameterError("clip", f"at least {tail + 2} frames for a {tail}-frame tail", frames)
    out = np.empty((2, frames + tail), dtype=np.float32)
    out[:, :frames] = audio
    out[:, frames:] = audio[:, frames - 2:frames - 2 - tail:-1]
    out.setflags(write=False)
    return out
