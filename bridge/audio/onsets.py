"""Onsets of percussive audio: an energy-flux envelope and its peaks (for checks and benches).

:func:`onset_envelope` is the half-wave rectified rise of log energy in short windows
(``window`` frames, every ``hop`` frames), the usual percussive onset function.
:func:`onset_frames` picks its peaks: local maxima above ``threshold`` times the largest one,
at least ``min_gap`` seconds apart, each given as the frame where its window starts rising.
"""

from __future__ import annotations

import numpy as np

#: Envelope resolution: 2 ms hop, 5 ms windows at 44.1 kHz.
HOP = 88
WINDOW = 220


def onset_envelope(audio: np.ndarray, hop: int = HOP, window: int = WINDOW) -> np.ndarray:
    """Onset strength per hop of ``(frames,)`` or ``(frames, channels)`` audio (channels mixed)."""
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    count = max(0, (len(mono) - window) // hop + 1)
    if count < 2:
        return np.zeros(max(count, 0))
    frames = np.lib.stride_tricks.sliding_window_view(mono, window)[::hop][:count]
    energy = np.log10(np.mean(frames * frames, axis=1) + 1e-10)
    rise = np.diff(energy, prepend=energy[0])
    return np.maximum(rise, 0.0)


def onset_frames(audio: np.ndarray, sample_rate: int = 44100, threshold: float = 0.3,
                 min_gap: float = 0.05, hop: int = HOP, window: int = WINDOW) -> np.ndarray:
    """Sample frames of the onsets in ``audio`` (see the module docstring)."""
    envelope = onset_envelope(audio, hop, window)
    if envelope.size < 3 or envelope.max() <= 0:
        return np.zeros(0, dtype=np.int64)
    floor = threshold * envelope.max()
    gap = max(1, round(min_gap * sample_rate / hop))
    picked: list[int] = []
    for index in np.argsort(envelope)[::-1]:
        if envelope[index] < floor:
            break
        if all(abs(index - other) >= gap for other in picked):
            picked.append(int(index))
    return np.sort(np.asarray(picked, dtype=np.int64) * hop + window // 2)


def envelope_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two onset envelopes (cut to the shorter one)."""
    count = min(len(a), len(b))
    x, y = np.asarray(a[:count], float), np.asarray(b[:count], float)
    if count < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
