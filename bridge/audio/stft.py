"""Short-time Fourier transform settings and transforms (centred, reflect-padded, Hann)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


@dataclass(frozen=True)
class Stft:
    """A centred STFT: ``win_length`` Hann window, zero-padded to ``n_fft``, ``hop_length`` apart.

    Works on tensors of shape ``(..., samples)`` on any device; the window is cached per
    device and dtype.
    """

    n_fft: int
    hop_length: int
    win_length: int

    @property
    def n_freqs(self) -> int:
        """One-sided bins: n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    def window(self, like: torch.Tensor) -> torch.Tensor:
        """Periodic Hann window on ``like``'s device, in its real dtype."""
        dtype = like.real.dtype if like.is_complex() else like.dtype
        key = (self.win_length, str(like.device), dtype)
        if key not in _WINDOWS:
            _WINDOWS[key] = torch.hann_window(self.win_length, dtype=dtype, device=like.device)
        return _WINDOWS[key]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex spectrum ``(..., n_freqs, frames)`` of ``(..., samples)`` audio."""
        lead = audio.shape[:-1]
        flat = audio.reshape(-1, audio.shape[-1])
        spec = torch.stft(
            flat, self.n_fft, self.hop_length, self.win_length, self.window(flat),
            center=True, pad_mode="reflect", return_complex=True,
        )
        return spec.reshape(*lead, *spec.shape[-2:])

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """Magnitude (power 1) spectrum of ``audio``."""
        return self.forward(audio).abs()

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Audio ``(..., length)`` from a complex spectrum, by windowed overlap-add."""
        lead = spec.shape[:-2]
        flat = spec.reshape(-1, *spec.shape[-2:])
        audio = torch.istft(
            flat, self.n_fft, self.hop_length, self.win_length, self.window(flat),
            center=True, length=length,
        )
        return audio.reshape(*lead, length)
