"""JACK transport vocabulary and a timebase we keep ourselves.

:class:`Timebase` is the native core's timebase (``rb_timebase`` in ``core.c``): it turns a
transport frame into bar/beat/tick at a tempo we own, changing tempo and meter at the next
bar line. The core fills JACK's position with it when riff-bridge is timebase master
(``--timebase-master``); the offline transport uses its own instance as a simulated master.

The constants mirror JACK's (checked against the ``jack`` module when a client opens).
"""

from __future__ import annotations

from typing import Any

from bridge.live.core import native
from bridge.timing import Meter, Tempo

TRANSPORT_STOPPED = 0
TRANSPORT_ROLLING = 1
TRANSPORT_STARTING = 3
POSITION_BBT = 0x10
POSITION_BBT_FRAME_OFFSET = 0x40
#: Ticks per beat we publish (the common JACK/Ardour value).
TICKS_PER_BEAT = 1920.0


class Timebase:
    """Bar/beat/tick of a tempo we keep (the core's ``rb_timebase``), for offline use.

    :meth:`request` asks for a new tempo; it applies from the bar line after the bar of the
    first :meth:`fill` that follows the request.
    """

    def __init__(self, tempo: Tempo, sample_rate: int) -> None:
        core = native()
        self._ffi, self._lib = core.ffi, core.lib
        self.struct = self._ffi.new("rb_timebase *")
        self.sample_rate = sample_rate
        meter = tempo.meter
        self._lib.rb_timebase_init(self.struct, sample_rate, tempo.bpm, meter.beats_per_bar, meter.beat_unit)

    @property
    def tempo(self) -> Tempo:
        """The tempo in force."""
        s = self.struct
        return Tempo(float(s.bpm), Meter(round(s.beats_per_bar), round(s.beat_type)))

    def request(self, tempo: Tempo) -> None:
        """Change tempo (and meter) from the next bar line on."""
        self._lib.rb_timebase_request(self.struct, tempo.bpm, tempo.meter.beats_per_bar, tempo.meter.beat_unit)

    def fill(self, pos: Any, frame: int) -> None:
        """Write BBT for transport ``frame`` into ``pos`` (a ``jack_position_t *`` cdata)."""
        self._lib.rb_timebase_fill(self.struct, pos, frame)


def new_position() -> Any:
    """A zeroed ``jack_position_t *`` (cdata) for offline transports."""
    return native().ffi.new("jack_position_t *")


def meter_of(beats_per_bar: float, beat_type: float) -> Meter:
    """A :class:`Meter` from JACK's float fields, falling back to 4/4 when they are unusable."""
    beats, unit = round(beats_per_bar), round(beat_type)
    if 1 <= beats <= 32 and unit in (1, 2, 4, 8, 16, 32):
        return Meter(beats, unit)
    return Meter()
