"""Musical measures of generated clips: beat periodicity, frequency profile, novelty, drum band.

All measures read either audio (mono float, 44.1 kHz) or spectrogram images' grey levels
(``(512, width)`` uint8, 255 silence, low frequencies at the bottom):
  - :func:`onset_envelope`: half-wave rectified spectral flux of a log-magnitude STFT
    (100 frames per second);
  - :func:`beat_autocorrelation`: the normalised autocorrelation of that envelope at the beat
    period (best lag within +-2 frames), and :func:`beat_contrast`: that value minus the
    mean autocorrelation over lags from 0.2 to 1.8 beats (0 for noise, high for a steady beat);
  - :func:`profile`: mean darkness per band (64 bands, bottom to top) of an image;
  - :func:`drum_band`: the percussive share of the image's amplitude (median-filter
    harmonic/percussive separation);
  - :func:`nearest_distance`: RMS grey-level distance to the nearest of a set of images;
  - :func:`profile_position`: where a profile lies on the way from one class's average
    profile to another's (0 at the first, 1 at the second).
"""

from __future__ import annotations

import numpy as np

FRAMES_PER_SECOND = 100
BANDS = 64


def onset_envelope(audio: np.ndarray, sample_rate: int = 44100) -> np.ndarray:
    """Spectral flux per frame (mean over bins of the rectified log-magnitude rise), 100 frames
    per second."""
    import torch

    signal = torch.as_tensor(np.asarray(audio, np.float32).reshape(-1))
    n_fft = 2048 if sample_rate > 30000 else 1024
    window = torch.hann_window(n_fft)
    hop = round(sample_rate / FRAMES_PER_SECOND)
    spec = torch.stft(signal, n_fft, hop, window=window, return_complex=True).abs()
    log = torch.log1p(100.0 * spec / (spec.max() + 1e-9))
    flux = torch.clamp(log[:, 1:] - log[:, :-1], min=0).mean(dim=0)
    return flux.numpy()


def autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lag 0 is 1) of the mean-removed envelope, unbiased."""
    x = envelope - envelope.mean()
    n = len(x)
    full = np.correlate(x, x, mode="full")[n - 1:]
    full = full / np.arange(n, 0, -1)
    return full / full[0] if full[0] > 0 else np.zeros_like(full)


def beat_lag(bpm: float) -> int:
    return round(FRAMES_PER_SECOND * 60.0 / bpm)


def beat_autocorrelation(audio: np.ndarray, bpm: float, sample_rate: int = 44100) -> float:
    """Autocorrelation of the onset envelope at the beat period (best of +-2 frames)."""
    ac = autocorrelation(onset_envelope(audio, sample_rate))
    lag = beat_lag(bpm)
    return float(ac[max(1, lag - 2):lag + 3].max()) if lag + 3 < len(ac) else float("nan")


def beat_contrast(audio: np.ndarray, bpm: float, sample_rate: int = 44100) -> float:
    """:func:`beat_autocorrelation` minus the mean autocorrelation over 0.2-1.8 beats."""
    ac = autocorrelation(onset_envelope(audio, sample_rate))
    lag = beat_lag(bpm)
    if 2 * lag >= len(ac):
        return float("nan")
    peak = ac[max(1, lag - 2):lag + 3].max()
    return float(peak - ac[round(0.2 * lag):round(1.8 * lag)].mean())


def darkness(image: np.ndarray) -> np.ndarray:
    """``(512, width)`` grey levels -> loudness-like values in [0, 1], low rows first."""
    return (255.0 - np.asarray(image, np.float32))[::-1] / 255.0


def profile(image: np.ndarray) -> np.ndarray:
    """Mean darkness of each of :data:`BANDS` mel bands (bottom to top)."""
    rows = darkness(image).mean(axis=1)
    return rows.reshape(BANDS, -1).mean(axis=1)


def amplitude(image: np.ndarray) -> np.ndarray:
    """Relative mel amplitude of grey levels (the codec's decode: ``((255 - px) / 255) ** 4``)."""
    return ((255.0 - np.asarray(image, np.float64)) / 255.0) ** 4


def _median(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    pad = [(0, 0), (0, 0)]
    pad[axis] = (size // 2, size // 2)
    padded = np.pad(values, pad, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=axis)
    return np.median(windows, axis=-1)


def drum_band(image: np.ndarray, size: int = 9) -> float:
    """Share of the image's amplitude that is percussive, by median-filter harmonic/percussive
    separation (Fitzgerald 2010) on the 2x2-pooled image: vertical (all-frequency, short)
    energy against horizontal (sustained pitch) energy, soft masks. Drums score high, chords
    and pads low."""
    full = amplitude(image)
    h, w = full.shape[0] // 2, full.shape[1] // 2
    amp = full[: 2 * h, : 2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))
    harmonic = _median(amp, size, axis=1)
    percussive = _median(amp, size, axis=0)
    mask = percussive ** 2 / np.maximum(percussive ** 2 + harmonic ** 2, 1e-12)
    return float((mask * amp).sum() / max(amp.sum(), 1e-12))


def nearest_distance(image: np.ndarray, references: np.ndarray) -> float:
    """RMS grey-level distance (0-255) from ``image`` to the nearest of ``references``,
    both cut to the shorter width."""
    width = min(image.shape[-1], references.shape[-1])
    diff = references[:, :, :width].astype(np.float32) - image[None, :, :width].astype(np.float32)
    return float(np.sqrt((diff ** 2).mean(axis=(1, 2))).min())


def nearest_class(candidate: np.ndarray, class_profiles: dict[str, np.ndarray]) -> str:
    """The class whose average profile is nearest (Euclidean) to ``candidate``."""
    return min(class_profiles, key=lambda name: float(np.linalg.norm(class_profiles[name] - candidate)))


def nearest_shape(candidate: np.ndarray, class_profiles: dict[str, np.ndarray]) -> str:
    """The class whose average profile has the most similar shape (correlation over bands) to
    ``candidate``: the balance of the bands, whatever the overall level (a clip's level follows
    guidance and the seed image; its timbre is how the bands compare)."""
    def shape(profile: np.ndarray) -> np.ndarray:
        centred = profile - profile.mean()
        return centred / max(float(np.linalg.norm(centred)), 1e-12)

    target = shape(candidate)
    return max(class_profiles, key=lambda name: float(shape(class_profiles[name]) @ target))


def profile_position(candidate: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """Where ``candidate`` lies on the line from profile ``start`` to profile ``end``: the
    projection ``(candidate - start) . (end - start) / |end - start|^2`` (0 at ``start``, 1 at
    ``end``; below 0 or above 1 past them). Raises ValueError when the two ends are equal."""
    direction = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    length = float(direction @ direction)
    if length <= 0.0:
        raise ValueError("profile_position: start and end profiles are equal, so there is no line between them")
    return float((np.asarray(candidate, np.float64) - start) @ direction / length)
