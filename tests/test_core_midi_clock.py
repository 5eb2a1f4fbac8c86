"""MIDI clock robustness of the native core, offline: lost ticks, jitter, stop and continue.

A simulated clock source (seeded) sends 24 ticks per quarter note to the core through
OfflineOutput, with ticks dropped on purpose (bar ticks among them) and Gaussian timing
noise. The bar grid must stay within one block of the ideal for five minutes, and the tempo
estimate must stay inside the live tempo tracker's MIDI hysteresis, so jitter never refits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest

from bridge.live.core import BarLine, Core
from bridge.live.crossfade import Crossfade
from bridge.live.offline import OfflineOutput, OfflineTransport
from bridge.live.tempo import HYSTERESIS_BPM, TempoTracker

RATE, BLOCK = 44100, 256
TICKS_PER_BAR = 96


def per_tick(bpm: float) -> float:
    return RATE * 60.0 / bpm / 24


@dataclass
class Clock:
    """An ideal clock from ``start`` at ``bpm``; ``frames`` are the (jittered) frames of the
    ticks actually sent, ``indices`` their tick numbers (dropped ones missing)."""

    start: float
    bpm: float
    indices: np.ndarray
    frames: np.ndarray

    def ideal(self, tick: float) -> float:
        return self.start + tick * per_tick(self.bpm)


def make_clock(bpm: float, seconds: float, jitter_ms: float, drops: list[int], seed: int = 1,
               start: int = 2000) -> Clock:
    count = int(seconds * RATE / per_tick(bpm))
    rng = np.random.default_rng(seed)
    indices = np.setdiff1d(np.arange(count), drops)
    ideal = start + indices * per_tick(bpm)
    noise = rng.normal(0.0, jitter_ms * RATE / 1000.0, len(indices)) if jitter_ms else 0.0
    frames = np.round(ideal + noise).astype(np.int64)
    frames = np.maximum.accumulate(np.maximum(frames, start))  # MIDI keeps its order
    return Clock(float(start), bpm, indices, frames)


def _output() -> OfflineOutput:
    output = OfflineOutput(RATE, BLOCK, OfflineTransport(RATE, rolling=False))
    output.attach(Core(RATE, 88200.0, Crossfade.for_rate(RATE)))
    return output


@dataclass
class Drive:
    lines: list[BarLine]
    bpm: list[float]          # the core's estimate after each block, once it has one
    readings: list[float]     # the tempo tracker's reading after each update
    tracker: TempoTracker


def drive(output: OfflineOutput, events: list[tuple[int, bytes]], end: int, tracker: TempoTracker | None = None,
          every: int = 4) -> Drive:
    """Run blocks until ``end`` (JACK frame), handing ``events`` to midi_in as they fall due,
    updating a tempo tracker every ``every`` blocks as the engine's monitor does."""
    core = output.core
    tracker = tracker or TempoTracker(core, lambda: 120.0)  # type: ignore[arg-type]
    lines: list[BarLine] = []
    bpm: list[float] = []
    readings: list[float] = []
    k, blocks = 0, 0
    while output.jack_frame < end:
        horizon = output.jack_frame + BLOCK
        while k < len(events) and events[k][0] < horizon:
            output.send_midi(*events[k])
            k += 1
        output.run(1)
        blocks += 1
        fpt = float(core.struct.midi_clock.frames_per_tick)  # type: ignore[union-attr]
        if fpt > 0:
            bpm.append(60.0 * RATE / 24 / fpt)
        if blocks % every == 0:
            readings.append(tracker.update().tempo.bpm)
            lines += core.drain_bar_lines()  # type: ignore[union-attr]
            output.blocks.clear()
    lines += core.drain_bar_lines()  # type: ignore[union-attr]
    return Drive(lines, bpm, readings, tracker)


def clock_events(clock: Clock, start_message: bool = True) -> list[tuple[int, bytes]]:
    events = [(int(clock.start) - 50, b"\xfa")] if start_message else []
    return events + [(int(f), b"\xf8") for f in clock.frames]


# -- five minutes at 133 BPM, ticks lost, jitter ---------------------------------------------

FIVE_MINUTES, BPM = 300.0, 133.0


def _drops(count: int, bar_ticks: bool, seed: int = 5) -> list[int]:
    """Single ticks dropped: beat ticks, ~1 in 150 ticks at random, and (``bar_ticks``) every
    20th bar tick; without ``bar_ticks`` no bar tick is dropped."""
    rng = np.random.default_rng(seed)
    drops = set(range(24 * 7 + 24, count, 24 * 37))
    drops |= {int(k) for k in rng.choice(np.arange(200, count), count // 150, replace=False)}
    if bar_ticks:
        drops |= set(range(TICKS_PER_BAR * 3, count, TICKS_PER_BAR * 20))
    else:
        drops = {d for d in drops if d % TICKS_PER_BAR}
    return sorted(d for d in drops if d - 1 not in drops)  # single ticks only


@functools.lru_cache(maxsize=None)
def five_minutes(jitter_ms: float, bar_ticks: bool, seconds: float = FIVE_MINUTES
                 ) -> tuple[Clock, Drive, OfflineOutput, list[int]]:
    """Five minutes of clock at 133 BPM with lost ticks and Gaussian jitter (sigma, ms)."""
    count = int(seconds * RATE / per_tick(BPM))
    drops = _drops(count, bar_ticks)
    clock = make_clock(BPM, seconds, jitter_ms, drops, seed=3)
    output = _output()
    result = drive(output, clock_events(clock), int(clock.frames[-1]) + BLOCK)
    return clock, result, output, drops


def _bar_errors(clock: Clock, lines: list[BarLine]) -> np.ndarray:
    return np.array([line.jack_frame - clock.ideal(line.bar * TICKS_PER_BAR) for line in lines])


def test_five_minutes_of_lost_ticks_and_jitter_keep_every_bar_within_one_block() -> None:
    clock, result, output, drops = five_minutes(1.0, False)
    bars = int(clock.indices[-1]) // TICKS_PER_BAR + 1
    assert [line.bar for line in result.lines] == list(range(bars))  # none lost, none doubled
    errors = _bar_errors(clock, result.lines)
    assert np.abs(errors).max() <= BLOCK, f"worst bar line {np.abs(errors).max():.0f} frames off"
    halves = np.array_split(np.abs(errors), 2)
    assert halves[1].mean() < halves[0].mean() + 10  # no slip that accumulates
    mc = output.core.struct.midi_clock  # type: ignore[union-attr]
    assert len(drops) > 100 and mc.lost == len(drops)  # every lost tick found and counted in
    assert mc.index == clock.indices[-1] + 1 and mc.seen == len(clock.indices)


def test_a_lost_bar_tick_keeps_its_bar_line_within_one_block() -> None:
    clock, result, _, drops = five_minutes(1.0, True, 60.0)
    errors = _bar_errors(clock, result.lines)
    lost_bars = sorted({d // TICKS_PER_BAR for d in drops if d % TICKS_PER_BAR == 0})
    assert len(lost_bars) >= 1
    kept = np.delete(errors, lost_bars)
    assert np.abs(kept).max() <= BLOCK  # the other bars stay put: a lost tick never accumulates
    assert np.abs(errors[lost_bars]).max() <= BLOCK, f"lost bar ticks: bar lines {errors[lost_bars].round()} off"


def test_a_late_senders_burst_of_owed_ticks_is_counted_once() -> None:
    """A sender that ran late sends the ticks it owes together, at one frame (a Python JACK
    client does, and a slow MIDI interface can): the gap before them is not lost ticks on top
    of them. Bars stay on the ticks' count (one burst holds a bar tick) and no tick is lost."""
    output, period = _output(), per_tick(150.0)
    ideal = [2000 + round(k * period) for k in range(600)]
    frames = list(ideal)
    for late in (150, 190, 333, 410):  # ticks late..late+2 all come just after late+2 was due
        for k in range(late, late + 3):
            frames[k] = ideal[late + 2] + 40
    result = drive(output, [(1950, b"\xfa")] + [(f, b"\xf8") for f in frames], frames[-1] + BLOCK)
    lines = [line.jack_frame for line in result.lines]
    assert len(lines) == len(ideal[::TICKS_PER_BAR])
    assert max(abs(a - b) for a, b in zip(lines, ideal[::TICKS_PER_BAR])) <= BLOCK, lines
    assert output.core.struct.midi_clock.lost == 0  # type: ignore[union-attr]
    assert result.bpm[-1] == pytest.approx(150.0, abs=0.3)


def test_tempo_estimate_and_reading_hold_under_half_a_millisecond_of_jitter() -> None:
    clock, result, _, _ = five_minutes(0.5, True)
    settled = np.array(result.bpm[200:])  # after the first two beats
    worst = float(np.abs(settled - clock.bpm).max())
    assert worst <= HYSTERESIS_BPM["midi"] / 2, f"tempo estimate off by up to {worst:.3f} BPM"
    readings = result.readings[100:]
    assert result.tracker.reading().source == "midi"
    assert len(set(readings)) == 1, f"the reading changed {len(set(readings)) - 1} times: refits"
    assert readings[0] == pytest.approx(clock.bpm, abs=HYSTERESIS_BPM["midi"])


def test_tempo_reading_holds_under_one_millisecond_of_jitter() -> None:
    clock, result, _, _ = five_minutes(1.0, False)
    settled = np.array(result.bpm[200:])
    assert float(np.abs(settled - clock.bpm).max()) <= HYSTERESIS_BPM["midi"]
    readings = result.readings[100:]
    assert len(set(readings)) == 1, f"the reading changed {len(set(readings)) - 1} times: refits"


# -- stop and continue ---------------------------------------------------------------------

def test_stop_holds_the_tempo_and_continue_resumes_on_the_right_bar() -> None:
    """The source stops sending at Stop (as jack_midi_clock does) and resumes 2 s later."""
    bpm, output = 133.0, _output()
    first = make_clock(bpm, 30.0, 0.0, [])
    stop_tick = 1000  # bar 10, tick 40
    events = clock_events(first)[:stop_tick + 1]
    stop_at = int(first.frames[stop_tick - 1]) + 300
    events.append((stop_at, b"\xfc"))
    tracker = TempoTracker(output.core, lambda: 120.0)  # type: ignore[arg-type]
    before = drive(output, events, stop_at + BLOCK, tracker)
    mc = output.core.struct.midi_clock  # type: ignore[union-attr]
    held_fpt, reading = float(mc.frames_per_tick), tracker.reading()
    assert reading.source == "midi" and reading.tempo.bpm == pytest.approx(bpm, abs=0.01)
    assert not mc.running and not output.core.struct.position.rolling  # type: ignore[union-attr]
    drive(output, [], stop_at + 2 * RATE, tracker)
    assert float(mc.frames_per_tick) == held_fpt and not mc.running
    assert tracker.reading().tempo.bpm == reading.tempo.bpm  # held, not the 120 BPM default
    resume = output.jack_frame + 1000
    ticks = [resume + 20 + round(k * per_tick(bpm)) for k in range(300)]
    events = [(resume, b"\xfb")] + [(f, b"\xf8") for f in ticks]
    after = drive(output, events, ticks[-1] + BLOCK, tracker)
    # the musical tick after Continue is tick 1000: the next bar (11) starts at tick 1056
    first_bar = (stop_tick // TICKS_PER_BAR + 1) * TICKS_PER_BAR - stop_tick
    assert [(line.bar, line.jack_frame) for line in after.lines][:2] == [
        (11, ticks[first_bar]), (12, ticks[first_bar + TICKS_PER_BAR])]
    assert before.lines[-1].bar == 10 and mc.lost == 0
    assert set(after.readings) == {reading.tempo.bpm}  # no refit at Continue


def test_continue_after_a_short_pause_resumes_on_the_right_tick() -> None:
    bpm, output = 133.0, _output()
    clock = make_clock(bpm, 3.0, 0.0, [])
    events = clock_events(clock)[:151]  # Start + ticks 0..149
    stop = int(clock.frames[149]) + 100
    events += [(stop, b"\xfc"), (stop + 5000, b"\xfb")]  # 113 ms without ticks, then Continue
    ticks = [stop + 5010 + round(k * per_tick(bpm)) for k in range(200)]
    events += [(f, b"\xf8") for f in ticks]
    result = drive(output, events, ticks[-1] + BLOCK)
    # ticks 150.. resume after Continue: bar 2 starts at musical tick 192
    assert [(line.bar, line.jack_frame) for line in result.lines][-2:] == [
        (2, ticks[192 - 150]), (3, ticks[192 - 150 + 96])]
    assert output.core.struct.midi_clock.lost == 0  # type: ignore[union-attr]


@pytest.mark.xfail(strict=True, reason=(
    "known limit: a sudden 1.5x slowdown exactly at a bar tick (140 -> 90 BPM in one tick) looks "
    "like a lost bar tick until the slow tick arrives, so that one bar line is placed where the "
    "old tempo put it (about 300 frames early); the tempo change is then recognised (no tick is "
    "counted as lost, the tempo reads 90) and every later bar line is exact. A real host ramps or "
    "changes tempo between ticks, which the fit follows."))
def test_a_large_tempo_step_is_a_tempo_change_not_lost_ticks() -> None:
    output = _output()
    fast, slow = per_tick(140.0), per_tick(90.0)
    frames = [2000 + round(k * fast) for k in range(192)]
    frames += [frames[-1] + round(k * slow) for k in range(1, 300)]
    result = drive(output, [(1950, b"\xfa")] + [(f, b"\xf8") for f in frames], frames[-1] + BLOCK)
    assert [line.jack_frame for line in result.lines] == frames[::TICKS_PER_BAR]
    assert output.core.struct.midi_clock.lost == 0  # type: ignore[union-attr]
    assert result.bpm[-1] == pytest.approx(90.0, abs=0.3)


def test_continue_with_jitter_resumes_without_a_refit() -> None:
    bpm, output = 133.0, _output()
    first = make_clock(bpm, 30.0, 0.5, [], seed=4)
    events = clock_events(first)[:1001]
    stop_at = int(first.frames[999]) + 300
    events.append((stop_at, b"\xfc"))
    tracker = TempoTracker(output.core, lambda: 120.0)  # type: ignore[arg-type]
    drive(output, events, stop_at + BLOCK, tracker)
    held = tracker.reading().tempo.bpm
    assert held == pytest.approx(bpm, abs=HYSTERESIS_BPM["midi"])
    drive(output, [], stop_at + 2 * RATE, tracker)
    resume = output.jack_frame + 1000
    noise = np.random.default_rng(9).normal(0.0, 0.5 * RATE / 1000, 300)
    ticks = [resume + 20 + round(k * per_tick(bpm) + noise[k]) for k in range(300)]
    after = drive(output, [(resume, b"\xfb")] + [(f, b"\xf8") for f in ticks], ticks[-1] + BLOCK, tracker)
    assert set(after.readings) == {held}, f"readings after Continue: {sorted(set(after.readings))}"
