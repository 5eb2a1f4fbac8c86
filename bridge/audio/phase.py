"""Phase recovery from a magnitude spectrogram: phase-gradient initialisation + fast Griffin-Lim.

The initial phase integrates the phase time-derivative predicted from the log-magnitude
(the time direction of PGHI, Prusa & Holighaus 2017, with the Gaussian equivalent of the Hann
window); fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99) then refines it. With this
start, fewer iterations reach the spectral convergence that random-phase Griffin-Lim needs
many more for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from bridge.audio.stft import Stft

#: Gaussian-equivalent time-frequency spread of a Hann window, per squared window length.
HANN_GAMMA = 0.25645


def phase_gradient_init(magnitude: torch.Tensor, stft: Stft) -> torch.Tensor:
    """Unit-modulus complex start phase ``(..., frames, n_freqs)`` for ``magnitude``.

    Bin ``m`` starts at the phase of an event at the window centre and advances by its
    estimated instantaneous frequency each hop (trapezoidal integration over time).
    """
    a, n_fft = stft.hop_length, stft.n_fft
    gamma = HANN_GAMMA * stft.win_length**2
    floor = 1e-5 * magnitude.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-30)
    log_mag = torch.log(magnitude + floor)
    slope = torch.zeros_like(log_mag)
    slope[..., 1:-1] = (log_mag[..., 2:] - log_mag[..., :-2]) * 0.5
    bins = torch.arange(magnitude.shape[-1], dtype=magnitude.dtype, device=magnitude.device)
    advance = 2 * math.pi * a * bins / n_fft + (a * n_fft / gamma) * slope
    steps = (advance[..., 1:, :] + advance[..., :-1, :]) * 0.5
    phase = torch.cumsum(torch.cat([torch.zeros_like(steps[..., :1, :]), steps], dim=-2), dim=-2)
    phase = phase - 2 * math.pi * bins * (stft.window_center / n_fft)
    return torch.polar(torch.ones_like(phase), phase)


#: Iterations between two calls of a :class:`GriffinLim` ``stop`` hook.
STOP_EVERY = 4


@dataclass(frozen=True)
class GriffinLim:
    """Fast Griffin-Lim over a given STFT.

    ``iterations`` projections with ``momentum`` (0.99 as in Riffusion); ``init`` is
    ``"gradient"`` (phase-gradient start, deterministic) or ``"random"`` (reference behaviour,
    seeded by ``seed``).
    """

    stft: Stft
    iterations: int = 32
    momentum: float = 0.99
    init: str = "gradient"
    seed: int = 0

    def start_phase(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The unit-modulus complex phase that iteration 0 starts from."""
        if self.init == "gradient":
            return phase_gradient_init(magnitude, self.stft)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        angles = torch.rand(magnitude.shape, generator=gen, dtype=magnitude.dtype)
        return torch.polar(torch.ones_like(angles), 2 * math.pi * angles).to(magnitude.device)

    def __call__(self, magnitude: torch.Tensor, length: int, stop: Callable[[], None] | None = None) -> torch.Tensor:
        """Audio ``(..., length)`` whose STFT magnitude approximates ``(..., frames, n_freqs)``.

        ``stop`` is called every :data:`STOP_EVERY` iterations and may raise to abandon the
        work (a live engine's cancelled clip)."""
        phase = self.start_phase(magnitude)
        previous = torch.zeros_like(phase)
        keep = self.momentum / (1.0 + self.momentum)
        for iteration in range(self.iterations):
            if stop is not None and iteration % STOP_EVERY == 0:
                stop()
            rebuilt = self.stft.forward(self.stft.inverse(magnitude * phase, length))
            phase = torch.sgn(torch.sub(rebuilt, previous, alpha=keep))
            previous = rebuilt
        return self.stft.inverse(magnitude * phase, length)
