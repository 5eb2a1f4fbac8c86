"""Equal-power crossfade curves for the joints between loops.

The fade starts on the joint: at offset 0 the incoming loop's first sample has gain 0 and
the outgoing continuation gain 1; after ``frames`` frames the incoming loop is at full gain.
``sin**2 + cos**2 == 1`` keeps the power of uncorrelated material constant across the joint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.errors import check_int, check_range
from bridge.timing import seconds_to_frames

#: Default joint length in milliseconds.
DEFAULT_CROSSFADE_MS = 5.0


@dataclass(frozen=True, eq=False)
class Crossfade:
    """Preallocated, read-only gain curves of ``frames`` frames (``fade_in`` rises, ``fade_out`` falls)."""

    frames: int
    fade_in: np.ndarray
    fade_out: np.ndarray

    @classmethod
    def of_length(cls, frames: int) -> "Crossfade":
        """Equal-power curves over ``frames`` frames (1 to 65536)."""
        check_int("crossfade frames", frames, 1, 65536)
        angle = (np.pi / 2) * np.arange(frames, dtype=np.float64) / frames
        return cls(frames, _frozen(np.sin(angle)), _frozen(np.cos(angle)))

    @classmethod
    def for_rate(cls, sample_rate: int, milliseconds: float = DEFAULT_CROSSFADE_MS) -> "Crossfade":
        """Curves of ``milliseconds`` at ``sample_rate`` (0.1 to 100 ms)."""
        check_range("crossfade_ms", milliseconds, 0.1, 100.0)
        return cls.of_length(max(1, seconds_to_frames(milliseconds / 1000.0, sample_rate)))


def _frozen(curve: np.ndarray) -> np.ndarray:
    """``curve`` as a read-only float32 array."""
    out = np.ascontiguousarray(curve, dtype=np.float32)
    out.setflags(write=False)
    return out
