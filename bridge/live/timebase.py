"""JACK transport vocabulary and a timebase we keep ourselves.

:class:`Timebase` turns a transport frame into bar/beat/tick at a tempo we own: it fills
a ``jack_position_t`` when riff-bridge is the timebase master (``--timebase-master``) and
the in-memory transport of :class:`~bridge.live.offline.OfflineOutput`. Tempo changes take
effect at the next bar line, like a tempo map with a change on a bar.

The constants mirror JACK's (checked against the ``jack`` module when a client opens), so
the realtime logic never needs to import ``jack``.
"""

from __future__ import annotations

from bridge.live.grid import OwnClock
from bridge.timing import Meter, Tempo, beats_to_frames

TRANSPORT_STOPPED = 0
TRANSPORT_ROLLING = 1
TRANSPORT_STARTING = 3
POSITION_BBT = 0x10
POSITION_BBT_FRAME_OFFSET = 0x40
#: Ticks per beat we publish (the common JACK/Ardour value).
TICKS_PER_BEAT = 1920.0


class TransportPosition:
    """The fields of ``jack_position_t`` that riff-bridge reads or writes (offline stand-in)."""

    __slots__ = ("frame", "valid", "bar", "beat", "tick", "bar_start_tick", "beats_per_bar",
                 "beat_type", "ticks_per_beat", "beats_per_minute", "bbt_offset")

    def __init__(self) -> None:
        self.frame = 0
        self.valid = 0
        self.bar = self.beat = self.tick = 0
        self.bar_start_tick = 0.0
        self.beats_per_bar = self.beat_type = 4.0
        self.ticks_per_beat = TICKS_PER_BEAT
        self.beats_per_minute = 120.0
        self.bbt_offset = 0


class Timebase:
    """Bar/beat/tick of a tempo we keep; :meth:`fill` is realtime safe.

    :meth:`request` (any thread) asks for a new tempo; it applies from the bar line after
    the bar of the first :meth:`fill` that follows the request.
    """

    def __init__(self, tempo: Tempo, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.tempo = tempo
        self.requested = tempo
        self.clock = OwnClock(tempo.frames_per_bar(sample_rate))
        self._armed: int | None = None

    def request(self, tempo: Tempo) -> None:
        """Change tempo (and meter) from the next bar line on."""
        self._armed = None
        self.requested = tempo

    def fill(self, pos: object, frame: int) -> None:
        """Write BBT for transport ``frame`` into ``pos`` (a ``jack_position_t`` or stand-in)."""
        bar, start = self._locate(frame)
        frames_per_beat = beats_to_frames(1.0, self.tempo.bpm, self.sample_rate)
        into = (frame - start) / frames_per_beat
        beat = min(int(into), self.tempo.meter.beats_per_bar - 1)
        pos.bar, pos.beat = bar + 1, beat + 1  # type: ignore[attr-defined]
        pos.tick = min(int((into - beat) * TICKS_PER_BEAT), int(TICKS_PER_BEAT) - 1)  # type: ignore[attr-defined]
        self._fill_meter(pos, bar)

    def _fill_meter(self, pos: object, bar: int) -> None:
        meter = self.tempo.meter
        pos.bar_start_tick = bar * meter.beats_per_bar * TICKS_PER_BEAT  # type: ignore[attr-defined]
        pos.beats_per_bar, pos.beat_type = float(meter.beats_per_bar), float(meter.beat_unit)  # type: ignore[attr-defined]
        pos.ticks_per_beat, pos.beats_per_minute = TICKS_PER_BEAT, self.tempo.bpm  # type: ignore[attr-defined]
        pos.valid = POSITION_BBT  # type: ignore[attr-defined]

    def _locate(self, frame: int) -> tuple[int, float]:
        bar, start = self.clock.locate(frame)
        requested = self.requested
        if requested is self.tempo:
            return bar, start
        if self._armed is None or bar < self._armed:
            self._armed = bar
        elif bar > self._armed:
            line = self._armed + 1
            self.clock.request(requested.frames_per_bar(self.sample_rate))
            self.clock.on_bar_line(line, self.clock.start_of(line))
            self.tempo, self._armed = requested, None
            bar, start = self.clock.locate(frame)
        return bar, start


def meter_of(beats_per_bar: float, beat_type: float) -> Meter:
    """A :class:`Meter` from JACK's float fields, falling back to 4/4 when they are unusable."""
    beats, unit = round(beats_per_bar), round(beat_type)
    if 1 <= beats <= 32 and unit in (1, 2, 4, 8, 16, 32):
        return Meter(beats, unit)
    return Meter()
