"""The offline output: the same realtime block logic, run on blocks in memory.

:class:`OfflineOutput` stands in for the JACK client (the fake of the output seam): it
keeps a frame counter, an in-memory :class:`OfflineTransport` (rolling/stopped, locate,
and optionally a timebase master with a tempo map) and a queue of MIDI events, and calls
:meth:`Processor.process <bridge.live.processor.Processor.process>` block by block as fast
as the caller asks, recording what comes out. Unit tests use it instead of a JACK server.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from bridge.live.processor import Processor
from bridge.live.timebase import TRANSPORT_ROLLING, TRANSPORT_STOPPED, Timebase, TransportPosition
from bridge.timing import Tempo


class OfflineTransport:
    """An in-memory JACK transport; with ``tempo`` it also acts as timebase master (BBT)."""

    def __init__(self, sample_rate: int = 44100, tempo: Tempo | None = None, rolling: bool = True) -> None:
        self.sample_rate = sample_rate
        self.timebase = Timebase(tempo, sample_rate) if tempo is not None else None
        self.rolling = rolling
        self.frame = 0
        self._pos = TransportPosition()

    def start(self) -> None:
        """Roll."""
        self.rolling = True

    def stop(self) -> None:
        """Stop (position kept)."""
        self.rolling = False

    def locate(self, frame: int) -> None:
        """Jump to ``frame``."""
        self.frame = frame

    def set_tempo(self, tempo: Tempo) -> None:
        """Master tempo change, effective at the next bar line (needs a timebase)."""
        if self.timebase is None:
            raise ValueError("set_tempo needs an OfflineTransport with a tempo (timebase master)")
        self.timebase.request(tempo)

    def query(self) -> tuple[int, TransportPosition]:
        """``(state, position)`` for the block that starts now."""
        pos = self._pos
        pos.frame, pos.valid = self.frame, 0
        if self.timebase is not None:
            self.timebase.fill(pos, self.frame)
        return (TRANSPORT_ROLLING if self.rolling else TRANSPORT_STOPPED), pos

    def advance(self, frames: int) -> None:
        """Move on by one block when rolling."""
        if self.rolling:
            self.frame += frames


class OfflineOutput:
    """Drives a :class:`Processor` over in-memory blocks (see the module docstring)."""

    def __init__(self, sample_rate: int = 44100, block_size: int = 256,
                 transport: OfflineTransport | None = None) -> None:
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.transport = transport or OfflineTransport(sample_rate)
        self.processor: Processor | None = None
        self.jack_frame = 0
        self.blocks: list[np.ndarray] = []
        self.block_frames: list[int] = []
        self._midi: list[tuple[int, bytes]] = []

    def open(self) -> None:
        """Nothing to connect to."""

    def attach(self, processor: Processor, tempo: Tempo | None = None) -> None:
        """Use ``processor`` for the following blocks (``tempo`` unused: the transport has its own)."""
        self.processor = processor

    def close(self) -> None:
        """Detach the processor."""
        self.processor = None

    def send_midi(self, jack_frame: int, data: bytes) -> None:
        """Deliver ``data`` to ``midi_in`` at absolute frame ``jack_frame`` (at or after now)."""
        self._midi.append((jack_frame, bytes(data)))
        self._midi.sort(key=lambda event: event[0])

    def run(self, blocks: int) -> np.ndarray:
        """Process ``blocks`` blocks; returns their ``(frames, 2)`` output (also kept in ``blocks``)."""
        if self.processor is None:
            raise RuntimeError("OfflineOutput.run before attach()")
        out = [self._block() for _ in range(blocks)]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    def run_seconds(self, seconds: float) -> np.ndarray:
        """Process whole blocks covering ``seconds``."""
        return self.run(int(np.ceil(seconds * self.sample_rate / self.block_size)))

    def recording(self) -> np.ndarray:
        """Everything output so far, ``(frames, 2)``."""
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), np.float32)

    def _block(self) -> np.ndarray:
        frames = self.block_size
        left, right = np.zeros(frames, np.float32), np.zeros(frames, np.float32)
        state, pos = self.transport.query()
        self.block_frames.append(pos.frame)
        self.processor.process(frames, state, pos, self._events(frames), self.jack_frame, left, right)  # type: ignore[union-attr]
        self.transport.advance(frames)
        self.jack_frame += frames
        block = np.stack([left, right], axis=1)
        self.blocks.append(block)
        return block

    def _events(self, frames: int) -> Iterator[tuple[int, bytes]]:
        end = self.jack_frame + frames
        due = [event for event in self._midi if event[0] < end]
        self._midi = self._midi[len(due):]
        return iter([(max(0, frame - self.jack_frame), data) for frame, data in due])
