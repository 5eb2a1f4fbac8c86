"""The result of one generation: image, mel magnitude and audio at an exact length."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Clip:
    """A generated clip.

    ``audio`` is ``(frames, channels)`` float32 at ``sample_rate``, exactly the length the
    request asked for; ``mel`` is the ``(channels, n_mels, width)`` magnitude it was decoded
    from (kept so the clip can be refitted to another length without generating again);
    ``timings`` maps stage name to seconds (e.g. ``text_encoder``, ``unet``, ``vae``, ``codec``).
    """

    audio: np.ndarray
    sample_rate: int
    mel: np.ndarray
    image: Any = None
    request: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        """Length in sample frames."""
        return int(self.audio.shape[0])

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def generation_seconds(self) -> float:
        """Total of all stage timings."""
        return float(sum(self.timings.values()))
