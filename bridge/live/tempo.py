"""The tempo in force, chosen from the sources the realtime side saw (ordinary threads).

Priority: JACK transport with a timebase master (tempo and meter from BBT), MIDI clock on
``midi_in`` (tempo from the last beat of ticks, meter from the control side, 4/4), the
control API's ``bpm`` (initialised from ``--bpm``). :class:`TempoTracker` turns the
realtime counters into an immutable :class:`TempoReading`, with a little hysteresis so a
clock's jitter does not refit loops, and keeps our own clock on the same tempo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bridge.live.loop import LoopTempo
from bridge.live.processor import SOURCE_MIDI, SOURCE_NAMES, SOURCE_TRANSPORT, Processor
from bridge.live.timebase import meter_of
from bridge.timing import MAX_BPM, MIN_BPM, Meter, Tempo

#: Changes smaller than this (BPM) within one source are ignored.
HYSTERESIS_BPM = 0.02


@dataclass(frozen=True)
class TempoReading:
    """A tempo, where it came from (``transport``, ``midi``, ``control``), and the sample rate."""

    tempo: Tempo
    source: str
    sample_rate: int

    def loop_tempo(self) -> LoopTempo:
        """The grid loops must be fitted to."""
        return LoopTempo(round(self.tempo.bpm, 6), self.tempo.meter.beats_per_bar, self.sample_rate)

    def close_to(self, other: "TempoReading") -> bool:
        """Same source, meter and rate, tempo within the hysteresis."""
        return (self.source == other.source and self.sample_rate == other.sample_rate
                and self.tempo.meter == other.tempo.meter
                and abs(self.tempo.bpm - other.tempo.bpm) < HYSTERESIS_BPM)


class TempoTracker:
    """Reads the processor's tempo source each :meth:`update` (call it every few ms).

    ``control_bpm`` gives the control API tempo. When ``master`` is set, riff-bridge is the
    timebase master: its own timebase follows the control tempo, never the transport (which
    would only echo it back). ``on_own_tempo`` hears every change of our own clock's tempo.
    """

    def __init__(self, processor: Processor, control_bpm: Callable[[], float],
                 on_own_tempo: Callable[[Tempo], None] | None = None, master: bool = False) -> None:
        self.processor = processor
        self.control_bpm = control_bpm
        self.on_own_tempo = on_own_tempo
        self.master = master
        self._reading = TempoReading(Tempo(_clamp(control_bpm())), "control", processor.sample_rate)
        self._own: tuple[Tempo, int] | None = None

    def reading(self) -> TempoReading:
        """The latest reading (any thread)."""
        return self._reading

    def update(self) -> TempoReading:
        """Re-read the sources; returns the (possibly unchanged) reading."""
        proc = self.processor
        fresh = self._measure(proc.tempo_source)
        if not fresh.close_to(self._reading):
            self._reading = fresh
        own = self._measure(-1).tempo if self.master else self._reading.tempo
        if (own, proc.sample_rate) != self._own:
            self._own = (own, proc.sample_rate)
            proc.set_own_tempo(own)
            if self.on_own_tempo is not None:
                self.on_own_tempo(own)
        return self._reading

    def _measure(self, source: int) -> TempoReading:
        proc = self.processor
        rate = proc.sample_rate
        if source == SOURCE_TRANSPORT and proc.transport_bpm > 0:
            meter = meter_of(proc.transport_beats_per_bar, proc.transport_beat_type)
            return TempoReading(Tempo(_clamp(proc.transport_bpm), meter), SOURCE_NAMES[source], rate)
        if source == SOURCE_MIDI:
            bpm = proc.midi_clock.bpm(rate)
            if bpm is not None:
                return TempoReading(Tempo(_clamp(bpm), Meter()), "midi", rate)
            return TempoReading(self._reading.tempo, "midi", rate)
        return TempoReading(Tempo(_clamp(self.control_bpm())), "control", rate)


def _clamp(bpm: float) -> float:
    """``bpm`` limited to the tempo range riff-bridge supports."""
    return min(MAX_BPM, max(MIN_BPM, float(bpm)))
