"""Bar-chunked restyling of a recording: what ``source = input`` does live, over a file.

:class:`Restyler` cuts the audio on the bar grid of ``bpm`` into chunks of ``bars`` bars
(chunk k starts on frame ``round(k * bars * frames_per_bar)``, so rounding never drifts off
the grid), restyles each one as img2img of its own spectrogram (the request's prompts,
seeds, alpha, negative prompt, guidance and denoising; ``seed_audio`` = the chunk), and
puts the clips back on their bars. The output has exactly the input's length: a last chunk
shorter than ``bars`` bars is padded with silence to the full loop for generation, and its
clip cut back. Joints are made as the live player makes them: the new chunk fades in from
its bar line with an equal-power crossfade while the previous clip's continuation (its end
reflected around the last sample) fades out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from bridge.audio.channels import stereo
from bridge.engine.request import GenerationRequest
from bridge.engine.seedaudio import SeedAudio
from bridge.errors import ParameterError
from bridge.live.crossfade import Crossfade
from bridge.timing import Meter, Tempo


@dataclass(frozen=True)
class Chunk:
    """Chunk ``index``: frames ``[start, stop)``, starting on bar ``bar``; ``full`` frames is
    the whole loop it is generated as (``stop - start`` except for a short last chunk)."""

    index: int
    start: int
    stop: int
    bar: int
    full: int


def chunk_grid(frames: int, sample_rate: int, tempo: Tempo, bars: int) -> list[Chunk]:
    """The chunks of ``bars`` bars covering ``frames`` frames at ``tempo``."""
    per_chunk = bars * tempo.frames_per_bar(sample_rate)
    chunks, index = [], 0
    while round(index * per_chunk) < frames:
        start, end = round(index * per_chunk), round((index + 1) * per_chunk)
        chunks.append(Chunk(index, start, min(end, frames), index * bars, end - start))
        index += 1
    return chunks


class Restyler:
    """Restyles audio chunk by chunk with ``engine`` (see the module docstring).

    ``request`` gives prompts, seeds, alpha, guidance, denoising, steps, ``bars`` and ``bpm``
    (its seed image is ignored: each chunk is its own seed).
    """

    def __init__(self, engine: Any, request: GenerationRequest, crossfade_ms: float = 5.0) -> None:
        if request.bars is None or request.bpm is None or int(request.bars) != request.bars:
            raise ParameterError("bars", "a whole number of bars with a tempo", request.bars)
        self.engine, self.request, self.crossfade_ms = engine, request, crossfade_ms
        self.tempo = Tempo(float(request.bpm), Meter(request.beats_per_bar))

    def chunks(self, frames: int, sample_rate: int) -> list[Chunk]:
        """The chunk grid for ``frames`` frames at ``sample_rate``."""
        return chunk_grid(frames, sample_rate, self.tempo, int(self.request.bars))  # type: ignore[arg-type]

    def restyle(self, audio: np.ndarray, sample_rate: int,
                progress: Callable[[Chunk, Any], None] | None = None) -> tuple[np.ndarray, list[Chunk]]:
        """``(frames, 2)`` float32 restyled audio of exactly ``len(audio)`` frames, and its chunks."""
        source = stereo(audio)
        fade = Crossfade.for_rate(sample_rate, self.crossfade_ms)
        out = np.zeros_like(source)
        chunks = self.chunks(len(source), sample_rate)
        previous: np.ndarray | None = None
        for chunk in chunks:
            clip = self._generate(source, chunk, sample_rate)
            restyled = stereo(clip.audio)[: chunk.full]
            out[chunk.start:chunk.stop] = restyled[: chunk.stop - chunk.start]
            if previous is not None:
                _join(out, chunk.start, previous, fade)
            previous = restyled
            if progress is not None:
                progress(chunk, clip)
        return out, chunks

    def _generate(self, source: np.ndarray, chunk: Chunk, sample_rate: int) -> Any:
        seed = np.zeros((chunk.full, 2), np.float32)
        seed[: chunk.stop - chunk.start] = source[chunk.start:chunk.stop]
        request = replace(self.request, seed_image=None,
                          seed_audio=SeedAudio(f"chunk{chunk.index}@{chunk.start}", seed, sample_rate))
        return self.engine.generate(request, chunk.full, sample_rate)


def _join(out: np.ndarray, start: int, previous: np.ndarray, fade: Crossfade) -> None:
    """Crossfade at ``start``: ``out`` fades in while ``previous`` continues (reflected) and fades out."""
    count = min(fade.frames, len(out) - start, len(previous) - 2)
    if count <= 0:
        return
    last = len(previous) - 2
    tail = previous[last:last - count:-1]
    segment = out[start:start + count]
    segment *= fade.fade_in[:count, None]
    segment += tail * fade.fade_out[:count, None]
