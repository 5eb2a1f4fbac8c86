"""Resampling: audio to an exact sample count (band-limited, FFT based) and spectrogram time axes.

Audio resampling pads both ends by reflection before the FFT so the implicit periodic
extension does not ring at the clip edges; the output has exactly the requested length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bridge.errors import ParameterError


def resample_to_length(audio: torch.Tensor, length: int, pad: int | None = None) -> torch.Tensor:
    """Band-limited resampling of ``(..., n)`` audio to ``(..., length)`` samples."""
    n = audio.shape[-1]
    if length < 1 or n < 1:
        raise ParameterError("length", "at least 1 sample in and out", (n, length))
    if length == n:
        return audio
    pad = min(n - 1, max(64, n // 16)) if pad is None else min(pad, n - 1)
    padded = _reflect_pad(audio, pad) if pad > 0 else audio
    total_in = padded.shape[-1]
    out_pad = round(pad * length / n)
    total_out = length + 2 * out_pad
    spectrum = torch.fft.rfft(padded, dim=-1)
    bins = total_out // 2 + 1
    kept = min(bins, spectrum.shape[-1])
    fitted = torch.zeros(*spectrum.shape[:-1], bins, dtype=spectrum.dtype, device=spectrum.device)
    fitted[..., :kept] = spectrum[..., :kept]
    out = torch.fft.irfft(fitted, n=total_out, dim=-1) * (total_out / total_in)
    return out[..., out_pad : out_pad + length]


def resample_rate(audio: torch.Tensor, rate_in: int, rate_out: int) -> torch.Tensor:
    """Audio ``(..., n)`` at ``rate_in`` as audio at ``rate_out`` (length scaled and rounded)."""
    if rate_in == rate_out:
        return audio
    return resample_to_length(audio, round(audio.shape[-1] * rate_out / rate_in))


def stretch_frames(spectrogram: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation of ``(..., bins, width)`` along time to ``(..., bins, frames)``.

    First and last frames are kept (align_corners), so a clip's start and end stay put.
    """
    width = spectrogram.shape[-1]
    if frames < 1:
        raise ParameterError("frames", "at least 1", frames)
    if frames == width:
        return spectrogram
    lead = spectrogram.shape[:-2]
    flat = spectrogram.reshape(-1, spectrogram.shape[-2], width)
    out = F.interpolate(flat, size=frames, mode="linear", align_corners=True)
    return out.reshape(*lead, spectrogram.shape[-2], frames)


def _reflect_pad(audio: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad the last axis by ``pad`` samples each side."""
    lead = audio.shape[:-1]
    flat = audio.reshape(-1, 1, audio.shape[-1])
    return F.pad(flat, (pad, pad), mode="reflect").reshape(*lead, audio.shape[-1] + 2 * pad)
