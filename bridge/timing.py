"""The one place that converts musical time (beats, bars) and seconds to sample frames.

All conversions round to the nearest whole frame; bar *positions* are computed from the
bar index (``round(k * frames_per_bar)``) so that rounding never accumulates.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import check_int, check_range

MIN_BPM = 20.0
MAX_BPM = 400.0


@dataclass(frozen=True)
class Meter:
    """A time signature: ``beats_per_bar`` beats of a ``beat_unit`` note (4/4 by default)."""

    beats_per_bar: int = 4
    beat_unit: int = 4

    def __post_init__(self) -> None:
        check_int("beats_per_bar", self.beats_per_bar, 1, 32)
        if self.beat_unit not in (1, 2, 4, 8, 16, 32):
            from bridge.errors import ParameterError

            raise ParameterError("beat_unit", "one of 1, 2, 4, 8, 16, 32", self.beat_unit)


@dataclass(frozen=True)
class Tempo:
    """A tempo in beats (of the meter's unit) per minute, with its meter."""

    bpm: float = 120.0
    meter: Meter = Meter()

    def __post_init__(self) -> None:
        check_range("bpm", self.bpm, MIN_BPM, MAX_BPM)

    def beat_seconds(self) -> float:
        """Length of one beat in seconds."""
        return 60.0 / self.bpm

    def bar_seconds(self) -> float:
        """Length of one bar in seconds."""
        return self.beat_seconds() * self.meter.beats_per_bar

    def frames_per_beat(self, sample_rate: int) -> float:
        """Exact (fractional) number of frames in one beat."""
        return sample_rate * self.beat_seconds()

    def frames_per_bar(self, sample_rate: int) -> float:
        """Exact (fractional) number of frames in one bar."""
        return sample_rate * self.bar_seconds()

    def bars_to_frames(self, bars: float, sample_rate: int) -> int:
        """Whole frames in ``bars`` bars, rounded to the nearest frame."""
        return round(bars * self.frames_per_bar(sample_rate))

    def bar_start_frame(self, bar_index: int, origin: int, sample_rate: int) -> int:
        """Frame on which bar ``bar_index`` starts, for a grid whose bar 0 starts at ``origin``."""
        return origin + round(bar_index * self.frames_per_bar(sample_rate))


def seconds_to_frames(seconds: float, sample_rate: int) -> int:
    """Nearest whole frame count for a duration in seconds."""
    return round(seconds * sample_rate)


def frames_to_seconds(frames: int, sample_rate: int) -> float:
    """Duration in seconds of ``frames`` frames."""
    return frames / sample_rate


def bars_to_seconds(bars: float, bpm: float, beats_per_bar: int = 4) -> float:
    """Duration in seconds of ``bars`` bars at ``bpm``."""
    return Tempo(bpm, Meter(beats_per_bar)).bar_seconds() * bars


#: MIDI clock resolution: ticks per quarter note.
MIDI_PPQN = 24


def beats_to_frames(beats: float, bpm: float, sample_rate: int) -> float:
    """Exact (fractional) frames in ``beats`` beats at ``bpm`` (no validation: realtime safe)."""
    return beats * 60.0 * sample_rate / bpm


def bpm_from_tick_frames(frames: float, ticks: int, sample_rate: int, ppqn: int = MIDI_PPQN) -> float:
    """Quarter-note tempo of ``ticks`` clock intervals that spanned ``frames`` frames."""
    return 60.0 * sample_rate * ticks / (ppqn * frames)
