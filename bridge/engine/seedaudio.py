"""Audio as a seed: img2img of a piece of sound (live input) instead of a named seed image.

:class:`SeedAudio` travels inside a :class:`~bridge.engine.request.GenerationRequest` (also
to the model's child process). Two seeds are equal when their ``key`` and rate are: the
key names the cut of audio (the live input loop it came from), so plans and requests compare
cheaply and never element by element. :func:`seed_audio_image` turns it into the
spectrogram image img2img starts from, fitted to the request's generation width.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from bridge.errors import ParameterError

if TYPE_CHECKING:
    from bridge.audio.codec import SpectrogramCodec

#: Seed images kept (the live loop reuses the newest one for a couple of clips at most).
CACHED_IMAGES = 4


@dataclass(frozen=True)
class SeedAudio:
    """``audio``: ``(frames,)`` or ``(frames, channels)`` float32 at ``sample_rate``; ``key``
    names it (equality and hashing use the key and rate only)."""

    key: str
    audio: np.ndarray = field(compare=False, repr=False)
    sample_rate: int = 44100

    def __post_init__(self) -> None:
        array = np.asarray(self.audio)
        if array.ndim not in (1, 2) or array.shape[0] < 2:
            raise ParameterError("seed_audio", "(frames,) or (frames, channels) samples", array.shape)
        if not np.isfinite(array).all():
            raise ParameterError("seed_audio", "finite samples", "NaN or infinity")

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return int(np.asarray(self.audio).shape[0]) / self.sample_rate

    def mono(self) -> np.ndarray:
        """``(frames,)`` float32 mix of the channels."""
        array = np.asarray(self.audio, dtype=np.float32)
        return array if array.ndim == 1 else array.mean(axis=1, dtype=np.float32)


_images: "OrderedDict[tuple[SeedAudio, int, int], Image.Image]" = OrderedDict()


def seed_audio_image(seed: SeedAudio, width: int, codec: "SpectrogramCodec") -> Image.Image:
    """The spectrogram of ``seed`` (mono mix) resized to ``width`` x n_mels (RGB); the
    audio's whole length becomes the clip's whole length, whatever the tempo now is."""
    height = codec.params.n_mels
    key = (seed, width, height)
    if key not in _images:
        image = codec.audio_to_image(seed.mono(), seed.sample_rate).convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        _images[key] = image
        while len(_images) > CACHED_IMAGES:
            _images.popitem(last=False)
    _images.move_to_end(key)
    return _images[key].copy()
