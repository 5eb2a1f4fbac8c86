"""Joining generated clips end to end without clicks (equal-power crossfades at the joints)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.errors import ParameterError, check_int


def alphas(count: int) -> list[float]:
    """``count`` alphas evenly from 0 to 1 inclusive (``[0.0]`` for one clip)."""
    check_int("clips", count, 1, 10_000)
    return [0.0] if count == 1 else [k / (count - 1) for k in range(count)]


@dataclass(frozen=True)
class Splice:
    """Places clip k at frame ``k * hop``; each clip is ``hop + fade`` frames long, and its
    last ``fade`` frames crossfade (cosine out, sine in: equal power) with the next clip's
    first ``fade``. The joined audio is exactly ``count * hop`` frames: the last clip's tail
    is dropped.
    """

    hop: int
    fade: int = 256

    def __post_init__(self) -> None:
        check_int("hop", self.hop, 1, 2**31 - 1)
        check_int("fade", self.fade, 0, self.hop)

    @property
    def clip_samples(self) -> int:
        """Frames each clip must have: ``hop + fade``."""
        return self.hop + self.fade

    def join(self, clips: list[np.ndarray]) -> np.ndarray:
        """``(count * hop, channels)`` float32 of ``(hop + fade, channels)`` clips."""
        if not clips:
            raise ParameterError("clips", "at least one clip", 0)
        for clip in clips:
            if clip.shape[0] != self.clip_samples:
                raise ParameterError("clip length", f"{self.clip_samples} frames", clip.shape[0])
        out = np.zeros((len(clips) * self.hop + self.fade, clips[0].shape[1]), dtype=np.float32)
        fade_in, fade_out = self.ramps()
        for index, clip in enumerate(clips):
            shaped = clip.astype(np.float32, copy=True)
            if index > 0:
                shaped[: self.fade] *= fade_in[:, None]
            shaped[self.hop:] *= fade_out[:, None]
            out[index * self.hop: index * self.hop + self.clip_samples] += shaped
        return out[: len(clips) * self.hop]

    def ramps(self) -> tuple[np.ndarray, np.ndarray]:
        """Equal-power fade-in (sine) and fade-out (cosine) of ``fade`` frames."""
        phase = (np.arange(self.fade) + 0.5) / max(self.fade, 1) * (np.pi / 2)
        return np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)
