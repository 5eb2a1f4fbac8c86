"""The tempo in force, chosen from the sources the core saw (ordinary threads).

Priority: JACK transport with a timebase master (tempo and meter from BBT; held while the
transport rolls when the master goes away), MIDI clock on ``midi_in`` (tempo from the
core's fit over the last two beats of ticks, meter 4/4), an external grid (Ableton Link),
the control API's ``bpm`` (initialised from ``--bpm``). :class:`TempoTracker` turns the
core's readings into an immutable :class:`TempoReading`, with hysteresis so a clock's jitter
never refits loops, and keeps our own clock on the same tempo.

When a followed source stops (MIDI stop, clock gone, master gone and transport stopped) the
tempo it last gave is held on our own clock until the control tempo is changed: a stop never
snaps back to the ``--bpm`` default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bridge.live.core import SOURCE_EXTERNAL, SOURCE_MIDI, SOURCE_NAMES, SOURCE_TRANSPORT, Core
from bridge.live.loop import LoopTempo
from bridge.live.timebase import meter_of
from bridge.timing import MAX_BPM, MIDI_PPQN, MIN_BPM, Meter, Tempo

#: Changes smaller than this (BPM) within one source are ignored.
HYSTERESIS_BPM = {"transport": 0.02, "midi": 0.3, "link": 0.02, "control": 0.0}


@dataclass(frozen=True)
class TempoReading:
    """A tempo (in beats of its meter's unit per minute), where it came from (``transport``,
    ``midi``, ``link``, ``control``), the sample rate, and ``held`` (the source's last tempo
    kept after it went away)."""

    tempo: Tempo
    source: str
    sample_rate: int
    held: bool = False

    def loop_tempo(self) -> LoopTempo:
        """The grid loops must be fitted to."""
        return LoopTempo(round(self.tempo.bpm, 6), self.tempo.meter.beats_per_bar, self.sample_rate)

    def quarter_bpm(self) -> float:
        """The tempo in quarter notes per minute (133 for a 7/8 source at 266 eighths)."""
        return self.tempo.bpm * 4.0 / self.tempo.meter.beat_unit

    def close_to(self, other: "TempoReading") -> bool:
        """Same source, meter and rate, tempo within the source's hysteresis."""
        return (self.source == other.source and self.sample_rate == other.sample_rate
                and self.tempo.meter == other.tempo.meter and self.held == other.held
                and abs(self.tempo.bpm - other.tempo.bpm) <= HYSTERESIS_BPM.get(self.source, 0.0))


class TempoTracker:
    """Reads the core's tempo source each :meth:`update` (call it every few ms).

    ``control_bpm`` gives the control API tempo. When ``master`` is set, riff-bridge is the
    timebase master: its own timebase follows the control tempo, never the transport (which
    would only echo it back). ``on_own_tempo`` hears every change of our own clock's tempo.
    """

    def __init__(self, core: Core, control_bpm: Callable[[], float],
                 on_own_tempo: Callable[[Tempo], None] | None = None, master: bool = False) -> None:
        self.core = core
        self.control_bpm = control_bpm
        self.on_own_tempo = on_own_tempo
        self.master = master
        self._reading = TempoReading(Tempo(_clamp(control_bpm())), "control", core.sample_rate)
        self._own: tuple[Tempo, int] | None = None
        self._held: tuple[Tempo, float] | None = None

    def reading(self) -> TempoReading:
        """The latest reading (any thread)."""
        return self._reading

    def update(self) -> TempoReading:
        """Re-read the sources; returns the (possibly unchanged) reading."""
        fresh = self._measure(self.core.struct.tempo_source)
        if not fresh.close_to(self._reading):
            if fresh.source == "control" and self._reading.source != "control" and not self.master:
                self._held = (self._reading.tempo, self.control_bpm())
                fresh = self._control()
            self._reading = fresh
        self._follow_own()
        return self._reading

    def _follow_own(self) -> None:
        own = self._control().tempo if self.master else self._reading.tempo
        rate = self.core.sample_rate
        if (own, rate) != self._own:
            self._own = (own, rate)
            self.core.send("OWN_TEMPO", a=own.frames_per_bar(rate))
            self.core.send("MIDI_METER", i=_ticks_per_bar(own.meter))
            if self.on_own_tempo is not None:
                self.on_own_tempo(own)

    def _measure(self, source: int) -> TempoReading:
        core, rate = self.core, self.core.sample_rate
        struct = core.struct
        if source == SOURCE_TRANSPORT and struct.transport_bpm > 0:
            meter = meter_of(struct.transport_beats_per_bar, struct.transport_beat_type)
            return TempoReading(Tempo(_clamp(struct.transport_bpm), meter), "transport", rate,
                                bool(struct.transport_held))
        if source == SOURCE_MIDI:
            per_tick = float(struct.midi_clock.frames_per_tick)
            if per_tick > 0:
                return TempoReading(Tempo(_clamp(60.0 * rate / (MIDI_PPQN * per_tick))), "midi", rate)
            return TempoReading(self._reading.tempo, "midi", rate)
        if source == SOURCE_EXTERNAL and getattr(core, "external", None):
            beats, bpm = core.external
            return TempoReading(Tempo(_clamp(bpm), Meter(beats)), SOURCE_NAMES[source], rate)
        return self._control()

    def _control(self) -> TempoReading:
        """Our own tempo: the held one until the control tempo changes, else the control's."""
        bpm, rate = self.control_bpm(), self.core.sample_rate
        if self._held is not None and self._held[1] == bpm:
            return TempoReading(self._held[0], "control", rate, held=True)
        self._held = None
        return TempoReading(Tempo(_clamp(bpm)), "control", rate)


def _ticks_per_bar(meter: Meter) -> int:
    """MIDI clock ticks in one bar of ``meter`` (24 per quarter note)."""
    return round(MIDI_PPQN * meter.beats_per_bar * 4 / meter.beat_unit)


def _clamp(bpm: float) -> float:
    """``bpm`` limited to the tempo range riff-bridge supports."""
    return min(MAX_BPM, max(MIN_BPM, float(bpm)))
