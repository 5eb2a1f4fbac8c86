"""The offline output: the native core's block function, run on blocks in memory.

:class:`OfflineOutput` stands in for the JACK client (the fake of the output seam): it keeps
a frame counter, an in-memory :class:`OfflineTransport` (rolling/stopped, locate, and
optionally a timebase master with a tempo map), a queue of MIDI events and optional input
audio, and calls :meth:`Core.process <bridge.live.core.Core.process>` block by block as fast
as the caller asks, recording what comes out. The block logic is the one that runs in JACK's
realtime thread (``core.c``): there is no Python twin of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bridge.live.core import Core
from bridge.live.timebase import TRANSPORT_ROLLING, TRANSPORT_STOPPED, Timebase, new_position
from bridge.timing import Tempo


class OfflineTransport:
    """An in-memory JACK transport; with ``tempo`` it also acts as timebase master (BBT)."""

    def __init__(self, sample_rate: int = 44100, tempo: Tempo | None = None, rolling: bool = True) -> None:
        self.sample_rate = sample_rate
        self.timebase = Timebase(tempo, sample_rate) if tempo is not None else None
        self.rolling = rolling
        self.frame = 0
        self._pos = new_position()

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

    def leave(self) -> None:
        """The timebase master goes away (BBT no longer valid; frames keep rolling)."""
        self.timebase = None

    def query(self) -> tuple[int, Any]:
        """``(state, jack_position_t *)`` for the block that starts now."""
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
    """Drives a :class:`Core` over in-memory blocks (see the module docstring).

    ``audio_in``: ``(frames, 2)`` float32 played into the core's input, block by block (input
    capture); silence after its end.
    """

    def __init__(self, sample_rate: int = 44100, block_size: int = 256,
                 transport: OfflineTransport | None = None, audio_in: np.ndarray | None = None) -> None:
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.transport = transport or OfflineTransport(sample_rate)
        self.audio_in = audio_in
        self.timebase_master = False
        self.core: Core | None = None
        self.jack_frame = 0
        self.blocks: list[np.ndarray] = []
        self.block_frames: list[int] = []
        self._midi: list[tuple[int, bytes]] = []

    def open(self) -> None:
        """Nothing to connect to."""

    def attach(self, core: Core, tempo: Tempo | None = None) -> None:
        """Use ``core`` for the following blocks (``tempo`` unused: the transport has its own)."""
        self.core = core

    def close(self) -> None:
        """Detach the core."""
        self.core = None

    def send_midi(self, jack_frame: int, data: bytes) -> None:
        """Deliver ``data`` to ``midi_in`` at absolute frame ``jack_frame`` (at or after now)."""
        self._midi.append((jack_frame, bytes(data)))
        self._midi.sort(key=lambda event: event[0])

    def run(self, blocks: int, block_size: int | None = None) -> np.ndarray:
        """Process ``blocks`` blocks (of ``block_size``, default the output's); returns their
        ``(frames, 2)`` output (also kept in ``blocks``)."""
        if self.core is None:
            raise RuntimeError("OfflineOutput.run before attach()")
        out = [self._block(block_size or self.block_size) for _ in range(blocks)]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    def run_seconds(self, seconds: float) -> np.ndarray:
        """Process whole blocks covering ``seconds``."""
        return self.run(int(np.ceil(seconds * self.sample_rate / self.block_size)))

    def recording(self) -> np.ndarray:
        """Everything output so far, ``(frames, 2)``."""
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, 2), np.float32)

    def _block(self, frames: int) -> np.ndarray:
        out = np.zeros((2, frames), np.float32)
        state, pos = self.transport.query()
        self.block_frames.append(int(pos.frame))
        self.core.process(frames, state, pos, self._events(frames), self.jack_frame, out[0], out[1],  # type: ignore[union-attr]
                          self._inputs(frames))
        self.transport.advance(frames)
        self.jack_frame += frames
        block = np.ascontiguousarray(out.T)
        self.blocks.append(block)
        return block

    def _inputs(self, frames: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self.audio_in is None:
            return None
        chunk = np.zeros((2, frames), np.float32)
        part = self.audio_in[self.jack_frame:self.jack_frame + frames]
        chunk[:, :len(part)] = part.T
        return chunk[0], chunk[1]

    def _events(self, frames: int) -> list[tuple[int, bytes]]:
        end = self.jack_frame + frames
        due = [event for event in self._midi if event[0] < end]
        self._midi = self._midi[len(due):]
        return [(max(0, frame - self.jack_frame), data) for frame, data in due]
