"""Seeded latent noise and its spherical interpolation (the reference's seed interpolation).

Noise is always drawn on the CPU from a ``torch.Generator`` seeded with the seed, in float32,
so a seed gives the same latents on every device; callers move it where it is needed.
"""

from __future__ import annotations

import torch

#: Above this cosine the two vectors are nearly parallel and slerp falls back to lerp.
DOT_THRESHOLD = 0.9995


def seeded_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 CPU tensor of ``shape``, a pure function of ``seed``."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from ``v0`` (t=0, returned exactly) to ``v1`` (t=1, exactly).

    For inputs of equal norm the result keeps that norm (linear interpolation would shrink
    it, by up to 1/sqrt(2) for independent noises, and wash the sample out). Nearly parallel
    inputs are interpolated linearly.
    """
    if t <= 0.0:
        return v0
    if t >= 1.0:
        return v1
    a, b = v0.double(), v1.double()
    dot = float((a * b).sum() / (a.norm() * b.norm()))
    if abs(dot) > DOT_THRESHOLD:
        return torch.lerp(a, b, t).to(v0.dtype)
    theta = torch.arccos(torch.tensor(dot, dtype=torch.float64))
    s0 = torch.sin(theta * (1.0 - t)) / torch.sin(theta)
    s1 = torch.sin(theta * t) / torch.sin(theta)
    return (s0 * a + s1 * b).to(v0.dtype)


def lerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Linear interpolation that returns ``v0`` at t=0 and ``v1`` at t=1 exactly."""
    if t <= 0.0:
        return v0
    if t >= 1.0:
        return v1
    return torch.lerp(v0, v1, t)
