"""Short-time Fourier transform (centred, reflect-padded, Hann), time-major, in plain torch.

Frame ``t`` covers samples ``[t * hop - win / 2, t * hop + win / 2)`` of the signal (reflect
padded at the ends, as ``torch.stft(center=True)``), is windowed, then zero-padded to
``n_fft`` at its end. Magnitudes equal ``torch.stft(..., center=True)``'s exactly; the phase
origin is the frame start, so a window-centred event has phase ``-2 pi k (win / 2) / n_fft``.
The inverse overlap-adds only the ``win`` samples that carry the window (not the padding).
Shapes: audio ``(..., samples)``, spectra ``(..., frames, n_freqs)``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

#: Windows and inverse envelopes, least recently used first (bounded: clip lengths vary live,
#: and an envelope is up to ~1 MB; 8 covers the lengths in flight: playing, refit, next).
_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
CACHE_SIZE = 8


def _cached(key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``_CACHE[key]``, made on first use; evicts the least recently used past CACHE_SIZE."""
    value = _CACHE.get(key)
    if value is None:
        value = _CACHE[key] = make()
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return value


@dataclass(frozen=True)
class Stft:
    """A centred STFT: ``win_length`` Hann window, zero-padded to ``n_fft``, ``hop_length`` apart."""

    n_fft: int
    hop_length: int
    win_length: int

    @property
    def n_freqs(self) -> int:
        """One-sided bins: n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def window_center(self) -> float:
        """Offset of the window's peak from the frame start, in samples."""
        return self.win_length / 2

    def frames_for(self, length: int) -> int:
        """Number of frames of a ``length``-sample signal."""
        return length // self.hop_length + 1

    def window(self, like: torch.Tensor) -> torch.Tensor:
        """Periodic Hann window on ``like``'s device, in its real dtype (cached)."""
        dtype = like.real.dtype if like.is_complex() else like.dtype
        key = ("hann", self.win_length, str(like.device), dtype)
        return _cached(key, lambda: torch.hann_window(self.win_length, dtype=dtype, device=like.device))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex spectrum ``(..., frames, n_freqs)`` of ``(..., samples)`` audio."""
        lead, length = audio.shape[:-1], audio.shape[-1]
        half = self.win_length // 2
        flat = audio.reshape(-1, 1, length)
        mode = "reflect" if length > half else "constant"
        padded = F.pad(flat, (half, half + self.hop_length), mode=mode)[:, 0]
        frames = padded.unfold(-1, self.win_length, self.hop_length)[:, : self.frames_for(length)]
        spectrum = torch.fft.rfft(frames * self.window(audio), n=self.n_fft, dim=-1)
        return spectrum.reshape(*lead, *spectrum.shape[-2:])

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """Magnitude (power 1) spectrum ``(..., frames, n_freqs)``."""
        return self.forward(audio).abs()

    def inverse(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """Audio ``(..., length)`` from ``(..., frames, n_freqs)``: least-squares overlap-add."""
        lead, frames = spectrum.shape[:-2], spectrum.shape[-2]
        flat = spectrum.reshape(-1, frames, spectrum.shape[-1])
        pieces = torch.fft.irfft(flat, n=self.n_fft, dim=-1)[..., : self.win_length]
        pieces = pieces * self.window(pieces)
        audio = self._overlap_add(pieces) * self._inverse_envelope(frames, pieces)
        half = self.win_length // 2
        audio = audio[:, half : half + length]
        if audio.shape[-1] < length:
            audio = F.pad(audio, (0, length - audio.shape[-1]))
        return audio.reshape(*lead, length)

    def _overlap_add(self, pieces: torch.Tensor) -> torch.Tensor:
        """Sum ``(batch, frames, win)`` pieces placed ``hop`` apart -> ``(batch, samples)``."""
        batch, frames, win = pieces.shape
        hop = self.hop_length
        if win % hop:
            out = pieces.new_zeros(batch, (frames - 1) * hop + win)
            index = (torch.arange(frames, device=pieces.device)[:, None] * hop
                     + torch.arange(win, device=pieces.device)[None, :]).reshape(-1)
            return out.index_add_(1, index, pieces.reshape(batch, -1))
        parts = win // hop
        blocks = pieces.reshape(batch, frames, parts, hop)
        out = pieces.new_zeros(batch, frames + parts - 1, hop)
        for j in range(parts):
            out[:, j : j + frames] += blocks[:, :, j]
        return out.reshape(batch, -1)

    def _inverse_envelope(self, frames: int, like: torch.Tensor) -> torch.Tensor:
        """``1 / sum of squared windows`` at each output sample (cached per frame count)."""
        key = ("env", self.win_length, self.hop_length, frames, str(like.device), like.dtype)
        return _cached(key, lambda: 1.0 / self._overlap_add(
            (self.window(like) ** 2).expand(1, frames, self.win_length).contiguous())[0].clamp(min=1e-11))
