"""Incoming MIDI messages handed from the JACK process callback to ordinary threads.

The callback pushes each non-clock message's raw bytes into a preallocated ring (no
parsing, no allocation of our own); a normal thread drains it into :class:`MidiMessage`
objects for the control layer. One producer (the realtime thread), one consumer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Bytes kept per message: channel voice and system common messages fit; longer (SysEx) are dropped.
MAX_MESSAGE_BYTES = 3
_SLOT = MAX_MESSAGE_BYTES + 1


@dataclass(frozen=True)
class MidiMessage:
    """One MIDI message as received: raw ``data`` bytes and the JACK ``frame`` it arrived on."""

    data: bytes
    frame: int

    @property
    def status(self) -> int:
        """Status byte (e.g. 0xB0 for a control change on channel 1)."""
        return self.data[0]

    @property
    def channel(self) -> int | None:
        """0-based channel of a channel message, None for system messages."""
        return self.status & 0x0F if self.status < 0xF0 else None

    @property
    def kind(self) -> str:
        """``note_off``, ``note_on``, ``polytouch``, ``control_change``, ``program_change``,
        ``aftertouch``, ``pitchwheel`` or ``system``."""
        if self.status >= 0xF0:
            return "system"
        return _KINDS[(self.status >> 4) - 8]


_KINDS = ("note_off", "note_on", "polytouch", "control_change", "program_change",
          "aftertouch", "pitchwheel")


class MidiRing:
    """Lock-free single-producer/single-consumer ring of short MIDI messages.

    ``push`` is realtime safe: it copies at most 3 bytes into a preallocated bytearray and
    publishes by advancing a counter (an atomic attribute store under the GIL). A full ring
    or a message over 3 bytes is counted in ``dropped`` instead of stored.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._data = bytearray(capacity * _SLOT)
        self._frames = [0] * capacity
        self._written = 0
        self._read = 0
        self.dropped = 0

    def push(self, frame: int, event: Any) -> None:
        """Store ``event`` (a bytes-like MIDI message) received on ``frame``; realtime safe."""
        size = len(event)
        if size > MAX_MESSAGE_BYTES or size == 0 or self._written - self._read >= self.capacity:
            self.dropped += 1
            return
        slot = self._written % self.capacity
        base = slot * _SLOT
        self._data[base] = size
        self._data[base + 1:base + 1 + size] = event
        self._frames[slot] = frame
        self._written += 1

    def drain(self) -> list[MidiMessage]:
        """Every message pushed since the last drain, oldest first (consumer thread only)."""
        written, messages = self._written, []
        while self._read < written:
            slot = self._read % self.capacity
            base = slot * _SLOT
            size = self._data[base]
            messages.append(MidiMessage(bytes(self._data[base + 1:base + 1 + size]), self._frames[slot]))
            self._read += 1
        return messages
