"""A separate JACK client that records ports and the transport, for the demo and soak runs.

It listens the way a DAW track would: its own client, input ports connected to riff-bridge's
outputs. Per block it also logs the public transport position (frame, BBT, tempo), so bar
lines can be derived from JACK itself, independently of riff-bridge's player.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: jack.ROLLING and jack.POSITION_BBT (values fixed by the JACK API), without importing jack.
ROLLING, POSITION_BBT = 1, 0x10
#: Transport log columns: frame, rolling, bbt valid, bar, beat, tick, ticks/beat, bpm, beats/bar.
LOG_COLUMNS = 9


@dataclass(frozen=True)
class Capture:
    """What was recorded: ``audio`` ``(frames, channels)`` from JACK frame ``first_frame``,
    and ``transport`` rows (see :data:`LOG_COLUMNS`), one per block."""

    audio: np.ndarray
    first_frame: int
    transport: np.ndarray
    sample_rate: int

    def bar_starts(self) -> dict[int, float]:
        """Transport frame where each bar began, from the BBT the timebase master published:
        per bar, the median of every block's estimate (a block after an xrun can carry the
        previous cycle's BBT; one such block must not move a bar line). The line that ends
        the last bar logged is included, at that bar's tempo: a clip that starts on it inside
        the last block (with 1024-frame blocks, often) has its line."""
        estimates: dict[int, list[float]] = {}
        bar_frames = 0.0
        for frame, rolling, valid, bar, beat, tick, tpb, bpm, beats_per_bar in self.transport:
            if rolling and valid and bpm > 0:
                into_bar = ((beat - 1) * tpb + tick) / tpb * 60.0 / bpm * self.sample_rate
                estimates.setdefault(int(bar), []).append(frame - into_bar)
                bar_frames = beats_per_bar * 60.0 / bpm * self.sample_rate
        starts = {bar: float(np.median(values)) for bar, values in estimates.items()}
        if starts:  # the line ending the last bar logged (a clip may start on it as the log stops)
            last = max(starts)
            starts[last + 1] = starts[last] + bar_frames
        return starts


class JackCapture:
    """Records ``ports`` (connected on :meth:`start`) for up to ``seconds``; realtime-safe callback."""

    def __init__(self, ports: Sequence[str], seconds: float, name: str = "riff-capture") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.sources = list(ports)
        self.inputs = [self.client.inports.register(f"in_{i}") for i in range(len(ports))]
        rate, block = self.client.samplerate, self.client.blocksize
        self.sample_rate = int(rate)
        self.audio = np.zeros((int(seconds * rate) + block, len(ports)), np.float32)
        self.transport = np.zeros((int(seconds * rate / block) + 2, LOG_COLUMNS))
        self.frames = self.blocks = 0
        self.first_frame = -1
        self.client.set_process_callback(self._process)

    def start(self) -> "JackCapture":
        """Activate and connect the sources to our inputs."""
        self.client.activate()
        for source, port in zip(self.sources, self.inputs):
            self.client.connect(source, port)
        return self

    def _process(self, frames: int) -> None:
        """Copy inputs into the preallocated buffer and log the transport; stops when full."""
        end = self.frames + frames
        if end > len(self.audio) or self.blocks >= len(self.transport):
            return
        if self.first_frame < 0:
            self.first_frame = self.client.last_frame_time
        for index, port in enumerate(self.inputs):
            self.audio[self.frames:end, index] = port.get_array()
        self._log_transport()
        self.frames = end

    def _log_transport(self) -> None:
        state, pos = self.client.transport_query_struct()
        row = self.transport[self.blocks]
        row[0], row[1], row[2] = pos.frame, state == ROLLING, bool(pos.valid & POSITION_BBT)
        row[3], row[4], row[5] = pos.bar, pos.beat, pos.tick
        row[6], row[7], row[8] = pos.ticks_per_beat, pos.beats_per_minute, pos.beats_per_bar
        self.blocks += 1

    def stop(self) -> Capture:
        """Deactivate, close, and return what was recorded."""
        self.client.deactivate()
        self.client.close()
        return Capture(self.audio[: self.frames].copy(), self.first_frame,
                       self.transport[: self.blocks].copy(), self.sample_rate)


def alignment_errors(boundaries: Sequence[Any], bar_starts: dict[int, float]) -> list[float]:
    """Distance in frames from each new clip's bar line to the nearest bar line of the capture
    (a clip started inside a bar, after a locate, counts from the start of that bar)."""
    lines = np.array(sorted(bar_starts.values()))
    if lines.size == 0:
        return []
    return [float(np.abs(lines - (b.frame - getattr(b, "into", 0))).min()) for b in boundaries if b.new]


def longest_silence(audio: np.ndarray) -> int:
    """Longest run of frames of ``(frames, channels)`` audio where every channel is exactly 0."""
    silent = np.concatenate([[0], np.all(audio == 0.0, axis=1).astype(np.int8), [0]])
    edges = np.diff(silent)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(runs.max()) if runs.size else 0
