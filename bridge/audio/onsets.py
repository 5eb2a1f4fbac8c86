"""Onsets of percussive audio: an energy-flux envelope and its peaks (for checks and benches).

:func:`onset_envelope` is the half-wave rectified rise of log energy in short windows
(``window`` frames, every ``hop`` frames; energy relative to the loudest window, floored
20 dB below it), the usual percussive onset function.
:func:`onset_frames` picks its peaks: local maxima above ``threshold`` times the largest one,
at least ``min_gap`` seconds apart, each given as the frame where its window starts rising.
"""

from __future__ import annotations

import numpy as np

#: Envelope resolution: 2 ms hop, 5 ms windows at 44.1 kHz.
HOP = 88
WINDOW = 220
#: Energies are relative to the loudest window, floored 20 dB below it (noise between hits
#: must not read as onsets).
FLOOR = 1e-2


def onset_envelope(audio: np.ndarray, hop: int = HOP, window: int = WINDOW) -> np.ndarray:
    """Onset strength per hop of ``(frames,)`` or ``(frames, channels)`` audio (channels mixed)."""
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    count = max(0, (len(mono) - window) // hop + 1)
    if count < 2:
        return np.zeros(max(count, 0))
    frames = np.lib.stride_tricks.sliding_window_view(mono, window)[::hop][:count]
    power = np.mean(frames * frames, axis=1)
    energy = np.log10(power / max(float(power.max()), 1e-20) + FLOOR)
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


def onset_offsets(reference: np.ndarray, audio: np.ndarray, sample_rate: int = 44100,
                  search: float = 0.04, threshold: float = 0.3) -> np.ndarray:
    """Timing of ``audio`` against ``reference`` at each onset of ``reference``, in seconds
    (positive: ``audio`` is late), from the lag (within ``search`` s) that best aligns their
    log-energy envelopes (10 ms windows, 1 ms steps) from 60 ms before to 100 ms after the
    onset. Phase recovery smears attacks over the codec's 100 ms window, so comparing the
    whole shape of each hit is steadier than comparing two peak pickers' choices."""
    hop = max(1, sample_rate // 1000)
    ref, out = _log_power(reference, hop, sample_rate // 100), _log_power(audio, hop, sample_rate // 100)
    reach, before, after = round(search * 1000), 60, 100
    offsets = []
    for onset in onset_frames(reference, sample_rate, threshold, min_gap=0.1):
        centre = int(onset) // hop
        lo, hi = centre - before, centre + after
        if lo - reach < 0 or hi + reach > min(len(ref), len(out)):
            continue
        segment = ref[lo:hi]
        scores = [_pearson(segment, out[lo + lag:hi + lag]) for lag in range(-reach, reach + 1)]
        offsets.append((int(np.argmax(scores)) - reach) * hop / sample_rate)
    return np.asarray(offsets)


def _log_power(audio: np.ndarray, hop: int, window: int) -> np.ndarray:
    mono = np.asarray(audio, dtype=np.float64)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    if len(mono) < window:
        return np.zeros(0)
    power = np.mean(np.lib.stride_tricks.sliding_window_view(mono, window)[::hop] ** 2, axis=1)
    return np.log10(power / max(float(power.max()), 1e-20) + 1e-3)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def envelope_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two onset envelopes (cut to the shorter one)."""
    count = min(len(a), len(b))
    x, y = np.asarray(a[:count], float), np.asarray(b[:count], float)
    if count < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
