"""Measures of decoding quality, and the plain reference recipe they are compared against."""

from __future__ import annotations

import torch

from bridge.audio.codec import INT16_SCALE, SpectrogramCodec
from bridge.audio.mel import mel_pseudo_inverse
from bridge.audio.phase import GriffinLim


def spectral_convergence(target_mel: torch.Tensor, audio: torch.Tensor, codec: SpectrogramCodec) -> float:
    """``||M(audio) - target|| / ||target||`` over the 0-10 kHz mel magnitude.

    ``target_mel`` is ``(n_mels, frames)`` in the codec's amplitude units; ``audio`` is
    ``(samples,)`` in [-1, 1] at the codec's rate, of the length the target stands for. The
    audio is rescaled by least squares first (decoders peak-normalise, so level is not error).
    """
    target = torch.as_tensor(target_mel, dtype=torch.float64)
    mel = codec.audio_to_mel(torch.as_tensor(audio, dtype=torch.float64))
    frames = min(mel.shape[-1], target.shape[-1])
    mel, target = mel[..., :frames], target[..., :frames]
    gain = (mel * target).sum() / (mel * mel).sum().clamp(min=1e-30)
    return float(torch.linalg.norm(gain * mel - target) / torch.linalg.norm(target))


def plain_mel_to_audio(mel: torch.Tensor, codec: SpectrogramCodec, iterations: int = 32,
                       seed: int = 0, fast_loop: bool = False) -> torch.Tensor:
    """The plain recipe: full-resolution pseudo-inverse, then random-phase fast Griffin-Lim
    (momentum 0.99) at n_fft 17640 and 44.1 kHz, as the reference app ran it with torchaudio.

    By default this is a literal port of ``torchaudio.functional.griffinlim`` over
    ``torch.stft``/``torch.istft``; ``fast_loop`` runs the same math on our STFT and update.
    """
    p = codec.params
    pinv = mel_pseudo_inverse(codec.analysis.n_freqs, p.sample_rate, p.n_mels,
                              float(p.min_frequency), float(p.max_frequency)).float()
    mel = torch.as_tensor(mel, dtype=torch.float32)
    linear = torch.matmul(mel.transpose(-1, -2), pinv / INT16_SCALE).clamp(min=0)
    length = p.samples_for_width(mel.shape[-1])
    if fast_loop:
        return GriffinLim(codec.analysis, iterations, init="random", seed=seed)(linear, length)
    return _torchaudio_griffinlim(linear.transpose(-1, -2), codec, iterations, seed, length)


def _torchaudio_griffinlim(specgram: torch.Tensor, codec: SpectrogramCodec, iterations: int,
                           seed: int, length: int) -> torch.Tensor:
    """``torchaudio.functional.griffinlim`` (momentum 0.99, random init), ported verbatim."""
    stft = codec.analysis
    window = torch.hann_window(stft.win_length)
    args = dict(n_fft=stft.n_fft, hop_length=stft.hop_length, win_length=stft.win_length, window=window)
    shape = specgram.shape
    specgram = specgram.reshape(-1, *shape[-2:])
    gen = torch.Generator().manual_seed(seed)
    angles = torch.polar(torch.ones_like(specgram), 2 * torch.pi * torch.rand(specgram.shape, generator=gen))
    tprev = torch.tensor(0.0, dtype=specgram.dtype)
    momentum = 0.99 / (1 + 0.99)
    for _ in range(iterations):
        inverse = torch.istft(specgram * angles, length=length, **args)
        rebuilt = torch.stft(inverse, center=True, pad_mode="reflect", normalized=False,
                             onesided=True, return_complex=True, **args)
        angles = rebuilt - tprev.mul_(momentum)
        angles = angles.div(angles.abs().add(1e-16))
        tprev = rebuilt
    waveform = torch.istft(specgram * angles, length=length, **args)
    return waveform.reshape(shape[:-2] + waveform.shape[-1:])
