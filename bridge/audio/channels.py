"""Channel layout: every clip and input block inside riff-bridge is stereo float32."""

from __future__ import annotations

import numpy as np


def stereo(audio: np.ndarray) -> np.ndarray:
    """``(frames, 2)`` contiguous float32 from ``(frames, channels)`` or ``(frames,)`` samples:
    mono doubled, channels after the second dropped."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.shape[1] == 1:
        array = np.repeat(array, 2, axis=1)
    return np.ascontiguousarray(array[:, :2])
