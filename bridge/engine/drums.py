"""Synthesized drum patterns (kick, snare, hi-hat) on a tempo grid, as plain numpy audio.

The built-in seed images are spectrograms of these patterns: img2img from them puts the
generated clip's beat on the host's grid. Every hit is a pure function of the sample rate
(noise is seeded), so a pattern is identical on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.errors import ParameterError, check_int
from bridge.timing import Meter, Tempo

#: Where each voice hits, in eighth notes of a 4/4 bar (beats_per_bar * 2 per bar in general).
PATTERNS: dict[str, dict[str, tuple[int, ...]]] = {
    "grid": {"kick": (0, 4, 5), "snare": (2, 6), "hat": (0, 1, 2, 3, 4, 5, 6, 7)},
    "kick": {"kick": (0, 2, 4, 6), "snare": (), "hat": ()},
    "pulse": {"click": (0, 2, 4, 6)},
}
#: Peak level of a rendered pattern.
PATTERN_PEAK = 0.9


@dataclass(frozen=True)
class DrumPattern:
    """A named pattern (``grid``: kick/snare/hats; ``kick``: four on the floor; ``pulse``: a
    broadband click on each beat, a tempo cue with no drum's spectrum) at a tempo.

    Eighth-note positions in :data:`PATTERNS` count from the bar line and repeat every bar of
    ``2 * beats_per_bar`` eighths (positions past a short bar's end are dropped).
    """

    name: str = "grid"
    bpm: float = 120.0
    beats_per_bar: int = 4

    def __post_init__(self) -> None:
        if self.name not in PATTERNS:
            raise ParameterError("pattern", "one of " + ", ".join(PATTERNS), self.name)
        Tempo(self.bpm, Meter(self.beats_per_bar))

    def render(self, num_samples: int, sample_rate: int = 44100) -> np.ndarray:
        """``(num_samples,)`` float32 mono audio of the pattern from bar 0, peak 0.9."""
        check_int("num_samples", num_samples, 1, 2**31 - 1)
        out = np.zeros(num_samples, dtype=np.float64)
        eighth = Tempo(self.bpm, Meter(self.beats_per_bar)).frames_per_beat(sample_rate) / 2
        per_bar = 2 * self.beats_per_bar
        for voice, positions in PATTERNS[self.name].items():
            hit = VOICES[voice](sample_rate)
            for index in range(int(num_samples / eighth) + 1):
                if index % per_bar in positions:
                    _mix(out, hit, round(index * eighth))
        peak = np.abs(out).max()
        return (out * (PATTERN_PEAK / peak if peak > 0 else 0.0)).astype(np.float32)


def _mix(out: np.ndarray, hit: np.ndarray, start: int) -> None:
    """Add ``hit`` into ``out`` at ``start``, cut at the end of ``out``."""
    end = min(len(out), start + len(hit))
    if start < end:
        out[start:end] += hit[: end - start]


def kick(sample_rate: int) -> np.ndarray:
    """A sine kick: pitch falls from 150 Hz to 50 Hz, 350 ms exponential decay."""
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    frequency = 50.0 + 100.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return np.sin(phase) * np.exp(-t / 0.12)


def snare(sample_rate: int) -> np.ndarray:
    """A snare: 190 Hz body plus a noise burst, 200 ms."""
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    noise = np.random.default_rng(1).standard_normal(t.size)
    return 0.5 * np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.05) + 0.4 * noise * np.exp(-t / 0.06)


def hat(sample_rate: int) -> np.ndarray:
    """A closed hi-hat: high-passed noise (first difference), 60 ms."""
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    noise = np.random.default_rng(2).standard_normal(t.size + 1)
    return 0.15 * np.diff(noise) * np.exp(-t / 0.012)


def click(sample_rate: int) -> np.ndarray:
    """A click: white noise, 3 ms decay, 20 ms (flat spectrum: the beat without a timbre)."""
    t = np.arange(int(0.02 * sample_rate)) / sample_rate
    noise = np.random.default_rng(3).standard_normal(t.size)
    return 0.5 * noise * np.exp(-t / 0.003)


VOICES = {"kick": kick, "snare": snare, "hat": hat, "click": click}
