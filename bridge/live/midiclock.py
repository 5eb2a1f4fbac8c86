"""Following MIDI clock: 24 ticks per quarter note, start/continue/stop, song position.

Bar lines come straight from the ticks: when the tick that begins a bar arrives, its
offset inside the JACK block *is* the bar line, so no prediction is needed. The realtime
part (:meth:`MidiClock.handle`) only counts ticks and records their frames in a
preallocated ring; the tempo estimate (:meth:`MidiClock.bpm`) runs in an ordinary thread.
"""

from __future__ import annotations

from bridge.live.grid import BlockPosition
from bridge.timing import MIDI_PPQN, Meter, bpm_from_tick_frames

CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
#: MIDI clock counts as present while its last tick is this recent (seconds).
CLOCK_TIMEOUT_SECONDS = 0.5
#: Intervals averaged for the tempo estimate (one beat).
ESTIMATE_TICKS = MIDI_PPQN
_RING = 128


class MidiClock:
    """MIDI clock state (see the module docstring); realtime safe except :meth:`bpm`.

    Per block: :meth:`begin_block`, :meth:`handle` for each system realtime/common byte
    sequence, then :meth:`fill`. Song position is kept in ticks (a 16th is 6 ticks).
    """

    def __init__(self, meter: Meter = Meter()) -> None:
        self.running = False
        self.tick = 0
        self.ticks_per_bar = ticks_per_bar(meter)
        self.tick_frames = [0] * _RING
        self.ticks_seen = 0
        self.bar_offset = -1
        self.bar = 0
        self.relocated = False

    def begin_block(self) -> None:
        """Forget the previous block's bar line and relocation."""
        self.bar_offset = -1
        self.relocated = False

    def handle(self, status: int, data1: int, data2: int, offset: int, frame: int) -> None:
        """One clock-related message at ``offset`` in the block (JACK frame ``frame``)."""
        if status == CLOCK:
            self._on_tick(offset, frame)
        elif status == START:
            self.running, self.tick, self.relocated = True, 0, True
        elif status == CONTINUE:
            self.running, self.relocated = True, True
        elif status == STOP:
            self.running = False
        elif status == SONG_POSITION:
            self.tick, self.relocated = (data1 | data2 << 7) * 6, True

    def _on_tick(self, offset: int, frame: int) -> None:
        self.tick_frames[self.ticks_seen % _RING] = frame
        self.ticks_seen += 1
        if not self.running:
            return
        if self.tick % self.ticks_per_bar == 0 and self.bar_offset < 0:
            self.bar_offset, self.bar = offset, self.tick // self.ticks_per_bar
        self.tick += 1

    def present(self, frame: int, sample_rate: int) -> bool:
        """True while ticks arrive (the last one less than 0.5 s before ``frame``)."""
        if self.ticks_seen == 0:
            return False
        last = self.tick_frames[(self.ticks_seen - 1) % _RING]
        return frame - last < CLOCK_TIMEOUT_SECONDS * sample_rate

    def fill(self, out: BlockPosition) -> None:
        """Report this block's bar line and state into ``out``."""
        out.rolling = self.running
        out.relocated = out.relocated or self.relocated
        out.bar_offset = self.bar_offset
        out.bar = self.bar if self.bar_offset >= 0 else max(0, self.tick - 1) // self.ticks_per_bar

    def bpm(self, sample_rate: int) -> float | None:
        """Quarter-note tempo over the last beat of steady ticks (None below 3); any thread.

        Only the newest run of ticks closer together than the clock timeout counts, so a
        clock that paused and came back is measured from its return.
        """
        seen = self.ticks_seen
        frames = [self.tick_frames[(seen - 1 - k) % _RING] for k in range(min(seen, ESTIMATE_TICKS + 1, _RING))]
        gap = CLOCK_TIMEOUT_SECONDS * sample_rate
        count = 1
        while count < len(frames) and 0 < frames[count - 1] - frames[count] < gap:
            count += 1
        if count < 3:
            return None
        return bpm_from_tick_frames(frames[0] - frames[count - 1], count - 1, sample_rate)


def ticks_per_bar(meter: Meter) -> int:
    """MIDI clock ticks in one bar of ``meter`` (24 per quarter note)."""
    return round(MIDI_PPQN * meter.beats_per_bar * 4 / meter.beat_unit)
