"""Block parity of the native core: scripted scenarios, block sizes 16 to 4096, sample by sample.

Each scenario drives the core through OfflineOutput (the transport as timebase master with
tempo and meter changes, locates, stop and start; MIDI clock with start, stop, song position,
continue and a tempo change; our own clock free-running with a tempo request; late clips;
gain ramps and mute). The test computes on its own where every bar line must fall and which
loop frame must sound at every output frame (``core_model``), then checks the core's output
against it at each block size and across block sizes: away from the 220-frame crossfades the
output equals the expected loop frame exactly, inside them the equal-power mix.

Events are scheduled on multiples of 4096 frames, where every schedule has a block start,
so a scenario means the same at every block size; bar lines and MIDI ticks fall anywhere.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

from bridge.live.core import Core
from bridge.live.crossfade import Crossfade
from bridge.live.offline import OfflineOutput, OfflineTransport
from bridge.live.player import Offer, Player
from bridge.timing import Meter, Tempo
from core_model import RATE, Expected, PlayerModel, Timeline, index_loop

ALIGN = 4096
FADE = Crossfade.for_rate(RATE)
SCHEDULES = ("16", "64", "256", "1024", "4096", "mixed", "odd")


def _tempo(frames_per_bar: int, beats: int) -> Tempo:
    """The tempo whose bar is exactly ``frames_per_bar`` frames (multiples of 4096 keep every
    bar line on a block start of every schedule, so the BBT ticks are exact there)."""
    return Tempo(beats * 60.0 * RATE / frames_per_bar, Meter(beats))


def schedule(name: str, frames: int) -> list[int]:
    """Block sizes covering ``frames``: one size, or seeded mixes that start a block on every
    multiple of 4096 (``mixed``: 16/64/256/1024/4096; ``odd``: any size from 1 to 1500)."""
    if name.isdigit():
        return [int(name)] * (frames // int(name))
    rng = np.random.default_rng(7 if name == "mixed" else 11)
    sizes: list[int] = []
    for _ in range(frames // ALIGN):
        left = ALIGN
        while left:
            if name == "mixed":
                size = int(rng.choice([s for s in (16, 64, 256, 1024, 4096) if s <= left]))
            else:
                size = min(left, int(rng.integers(1, 1501)))
            sizes.append(size)
            left -= size
    return sizes


# -- scenarios ---------------------------------------------------------------------------------

@dataclass
class Scenario:
    """A script for the core and, computed separately, the timeline the model plays."""

    frames: int
    make: Callable[[], OfflineOutput]
    events: dict[int, list[tuple]] = field(default_factory=dict)
    midi: list[tuple[int, bytes]] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)  # MIDI clock ticks among ``midi``
    timeline: Callable[["Scenario"], Timeline] | None = None
    block_invariant: bool = True

    def at(self, frame: int, *event: Any) -> None:
        assert frame % ALIGN == 0, f"event at {frame}: not on a multiple of {ALIGN}"
        self.events.setdefault(frame, []).append(event)


def _offers_and_gains(sc: Scenario, tl: Timeline) -> Timeline:
    for frame, events in sc.events.items():
        for event in events:
            if event[0] == "offer":
                offer = event[1]
                tl.offers[frame] = (offer.next, offer.refit, offer.busy)
            elif event[0] == "gain":
                tl.gains[frame] = event[1]
    return tl


def transport_timeline(sc: Scenario, tempo: Tempo) -> Timeline:
    """Bar lines and relocations of a timebase master's transport, from its own tempo map."""
    starts = [(0, 0.0, tempo.frames_per_bar(RATE))]  # (first bar, its frame, frames per bar)

    def bar_at(x: float) -> tuple[int, float, float]:
        bar0, start, fpb = [s for s in starts if s[1] <= x][-1]
        bar = bar0 + int((x - start) // fpb)
        return bar, start + (bar - bar0) * fpb, fpb

    rolling = np.zeros(sc.frames, bool)
    runs: list[tuple[int, int, int]] = []  # (output frame, transport frame, length) rolling
    x, roll, t = 0, True, 0
    for e in sorted(sc.events) + [sc.frames]:
        if roll and e > t:
            rolling[t:e] = True
            runs.append((t, x, e - t))
            x += e - t
        t = e
        for event in sc.events.get(e, []):
            if event[0] == "stop":
                roll = False
            elif event[0] == "start":
                roll = True
            elif event[0] == "locate":
                x = event[1]
            elif event[0] == "tempo":
                bar, start, fpb = bar_at(x)
                starts[:] = [s for s in starts if s[0] <= bar] + [(bar + 1, start + fpb, event[1].frames_per_bar(RATE))]
    lines, relocations, expected = [], {}, None
    for t0, x0, length in _merge(runs):
        # every start of rolling counts: a locate, or a start after a stop (even at the same frame)
        bar, start, fpb = bar_at(x0)
        relocations[t0] = (x0 - round(start), fpb, bar)
        expected = x0 + length
        bar, start, fpb = bar_at(x0)
        if round(start) < x0:
            bar, start, fpb = bar_at(start + fpb + 0.5)
        while round(start) < x0 + length:
            lines.append((t0 + round(start) - x0, bar))
            bar, start, fpb = bar_at(start + fpb + 0.5)
    return _offers_and_gains(sc, Timeline(sc.frames, rolling, lines, relocations))


def _merge(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Join rolling runs that continue each other in output and transport frames."""
    out: list[tuple[int, int, int]] = []
    for t, x, n in runs:
        if out and out[-1][0] + out[-1][2] == t and out[-1][1] + out[-1][2] == x:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + n)
        else:
            out.append((t, x, n))
    return out


def _transport_output(tempo: Tempo) -> Callable[[], OfflineOutput]:
    def make() -> OfflineOutput:
        output = OfflineOutput(RATE, 256, OfflineTransport(RATE, tempo))
        output.attach(Core(RATE, tempo.frames_per_bar(RATE), FADE))
        return output
    return make


def steady_and_late() -> Scenario:
    """2/4 at 129.2 BPM: a 2-bar clip, a new 1-bar clip, the worker busy (late repeats), a third clip."""
    tempo = _tempo(40960, 2)
    a, b, c = index_loop(1, 40960, 2, 2), index_loop(2, 40960, 1, 2), index_loop(3, 40960, 1, 2)
    sc = Scenario(10 * 40960, _transport_output(tempo))
    sc.at(0, "offer", Offer(next=a))
    sc.at(3 * 40960 + 8192, "offer", Offer(next=b))
    sc.at(4 * 40960 + 8192, "offer", Offer(next=b, busy=True))
    sc.at(7 * 40960 + 20480, "offer", Offer(next=c))
    sc.timeline = lambda s: transport_timeline(s, tempo)
    return sc


def tempo_and_meter_changes() -> Scenario:
    """2/4 -> 3/4 slower bars (the old clip repeats its last beat, then its refit is taken) ->
    2/4 faster bars (the refit is cut at every bar line and resynced)."""
    first, second, third = _tempo(40960, 2), _tempo(49152, 3), _tempo(32768, 2)
    a = index_loop(1, 40960, 2, 2)
    refit = index_loop(1, 49152, 2, 3, version=1)
    sc = Scenario(2 * 40960 + 4 * 49152 + 4 * 32768, _transport_output(first))
    sc.at(0, "offer", Offer(next=a))
    sc.at(45056, "tempo", second)  # inside bar 1: from bar 2 (frame 81920) on
    sc.at(81920 + 49152 + 8192, "offer", Offer(next=a, refit=refit))  # bar 3: taken at bar 4
    sc.at(81920 + 3 * 49152 + 4096, "tempo", third)  # inside bar 5: from bar 6 on
    sc.timeline = lambda s: transport_timeline(s, first)
    return sc


def master_leaves() -> Scenario:
    """The timebase master goes away while the transport rolls (BBT no longer valid): the core
    holds its last grid, tempo and meter (2/4 at 129.2 BPM), and the clips play on."""
    tempo = _tempo(40960, 2)
    sc = Scenario(6 * 40960, _transport_output(tempo))
    sc.at(0, "offer", Offer(next=index_loop(1, 40960, 2, 2)))
    sc.at(25 * ALIGN, "leave")
    sc.at(35 * ALIGN, "offer", Offer(next=index_loop(2, 40960, 1, 2)))
    sc.timeline = lambda s: transport_timeline(s, tempo)
    return sc


def locate_stop_start() -> Scenario:
    """2/4 at 129.2 BPM: a locate inside a bar (plays from the offset), a stop (fades out), a
    start without locate (waits for the bar line), a locate while stopped onto a bar line,
    a locate while rolling onto a bar line, one inside a bar."""
    tempo = _tempo(40960, 2)
    sc = Scenario(12 * 40960, _transport_output(tempo))
    sc.at(0, "offer", Offer(next=index_loop(1, 40960, 2, 2)))
    sc.at(15 * ALIGN, "locate", 5 * 40960 + 18432)  # on a BBT tick: the offset is exact
    sc.at(31 * ALIGN, "stop")
    sc.at(36 * ALIGN, "start")
    sc.at(60 * ALIGN, "stop")
    sc.at(62 * ALIGN, "locate", 9 * 40960)
    sc.at(65 * ALIGN, "start")
    sc.at(90 * ALIGN, "locate", 2 * 40960)
    sc.at(100 * ALIGN, "locate", 7 * 40960 + 6144)
    sc.timeline = lambda s: transport_timeline(s, tempo)
    return sc


def odd_tempo() -> Scenario:
    """3/4 at 174 BPM (45620.69 frames per bar: bar lines on rounded fractional frames, the
    same at every block size), new clips, a late stretch."""
    tempo = Tempo(174.0, Meter(3))
    fpb = tempo.frames_per_bar(RATE)
    a, b = index_loop(1, fpb, 2, 3), index_loop(2, fpb, 1, 3)
    sc = Scenario(90 * ALIGN, _transport_output(tempo))
    sc.at(0, "offer", Offer(next=a))
    sc.at(30 * ALIGN, "offer", Offer(next=b, busy=True))
    sc.at(70 * ALIGN, "offer", Offer(next=a))
    sc.timeline = lambda s: transport_timeline(s, tempo)
    return sc


def gain_and_mute() -> Scenario:
    """Volume 0.5, mute, unmute, 0.25: each a ramp over the next block (so the audio differs by
    block size by design; bar lines and loop starts do not)."""
    tempo = _tempo(40960, 2)
    sc = Scenario(5 * 40960, _transport_output(tempo), block_invariant=False)
    sc.at(0, "offer", Offer(next=index_loop(1, 40960, 1, 2)))
    for frame, gain in [(4 * ALIGN, 0.5), (11 * ALIGN, 0.0), (20 * ALIGN, 1.0), (31 * ALIGN, 0.25)]:
        sc.at(frame, "gain", gain)
    sc.timeline = lambda s: transport_timeline(s, tempo)
    return sc


OWN_FPB = 40960.0


def own_clock_free_run() -> Scenario:
    """Transport stopped, --free-run: our own clock at 129.2 BPM in 2/4, a tempo request (from
    the next bar line), late repeats, free-run off (fades out) and on again (a jump on our own
    clock: plays from the offset into the bar)."""
    a, b = index_loop(1, OWN_FPB, 1, 2), index_loop(2, 49152, 1, 2)

    def make() -> OfflineOutput:
        output = OfflineOutput(RATE, 256, OfflineTransport(RATE, rolling=False))
        output.attach(Core(RATE, OWN_FPB, FADE, free_run=True))
        return output

    sc = Scenario(120 * ALIGN, make)
    sc.at(0, "offer", Offer(next=a))
    sc.at(15 * ALIGN, "own_tempo", 49152.0)  # inside bar 1: from bar 2 on
    sc.at(22 * ALIGN, "offer", Offer(next=b, busy=True))
    sc.at(50 * ALIGN, "offer", Offer(next=b))
    sc.at(75 * ALIGN, "free_run", False)
    sc.at(85 * ALIGN, "free_run", True)
    sc.timeline = own_timeline
    return sc


def own_timeline(sc: Scenario) -> Timeline:
    """Bar lines of our own clock on the core's own frames (= output frames here)."""
    rolling = np.ones(sc.frames, bool)
    requests: list[tuple[int, float]] = []
    for frame, events in sorted(sc.events.items()):
        for event in events:
            if event[0] == "free_run":
                rolling[frame:] = event[1]
            elif event[0] == "own_tempo":
                requests.append((frame, event[1]))
    bar_starts, fpb, start, bar = [], OWN_FPB, 0.0, 0
    while start < sc.frames:
        line = round(start)
        if requests and requests[0][0] <= line and rolling[line]:
            fpb = requests.pop(0)[1]
        bar_starts.append((bar, start, fpb))
        start, bar = start + fpb, bar + 1
    lines = [(round(s), b) for b, s, _ in bar_starts if round(s) < sc.frames and rolling[round(s)]]
    relocations = {}
    for t in np.flatnonzero(np.diff(rolling.astype(np.int8)) > 0) + 1:
        b, s, f = [row for row in bar_starts if round(row[1]) <= t][-1]
        relocations[int(t)] = (int(t) - round(s), f, b)
    relocations[0] = (0, OWN_FPB, 0)
    return _offers_and_gains(sc, Timeline(sc.frames, rolling, lines, relocations))


PER_TICK, SLOW_TICK = 829, 1000  # 132.99 and 110.25 BPM, whole frames per tick


TICKS_PER_BAR = 48  # 2/4


def midi_clock() -> Scenario:
    """MIDI clock in 2/4 (transport stopped, no master): Start, a 1-bar clip, Stop mid-bar (the
    source keeps ticking), Song Position to bar 5 beat 2, Continue (plays from that offset),
    a tempo change 133 -> 110 BPM (the 2-bar clip repeats its last beat), its refit."""
    a = index_loop(1, TICKS_PER_BAR * PER_TICK, 2, 2)
    refit = index_loop(1, TICKS_PER_BAR * SLOW_TICK, 2, 2, version=1)

    def make() -> OfflineOutput:
        output = OfflineOutput(RATE, 256, OfflineTransport(RATE, rolling=False))
        output.attach(Core(RATE, 88200.0, FADE))
        return output

    sc = Scenario(115 * ALIGN, make)
    ticks = [ALIGN + 300 + k * PER_TICK for k in range(300)]
    ticks += [ticks[-1] + k * SLOW_TICK for k in range(1, 1 + (sc.frames - ticks[-1]) // SLOW_TICK)]
    sc.midi = [(f, b"\xf8") for f in ticks]
    sc.ticks = ticks
    sc.at(0, "offer", Offer(next=a))
    sc.at(0, "midi_meter", TICKS_PER_BAR)
    sc.at(ALIGN, "midi", b"\xfa")
    sc.at(22 * ALIGN, "midi", b"\xfc")
    sc.at(24 * ALIGN, "midi", b"\xf2" + bytes([44, 0]))  # 44 sixteenths: bar 5, beat 2 of 2/4
    sc.at(26 * ALIGN, "midi", b"\xfb")
    sc.at(80 * ALIGN, "offer", Offer(next=a, refit=refit))
    sc.timeline = midi_timeline
    return sc


def midi_timeline(sc: Scenario) -> Timeline:
    """Bar lines from the tick list and the transport messages, counted the way the MIDI spec
    counts: Start = tick 0, Song Position = 6 ticks per sixteenth, Continue from there."""
    ticks = sc.ticks
    per_bar = TICKS_PER_BAR
    controls = sorted((frame, event[1]) for frame, events in sc.events.items() for event in events
                      if event[0] == "midi")
    rolling = np.zeros(sc.frames, bool)
    lines, relocations = [], {}
    tick, running, k = 0, False, 0
    for index, (frame, data) in enumerate(controls + [(sc.frames, b"")]):
        while k < len(ticks) and ticks[k] < frame:
            if running:
                if tick % per_bar == 0:
                    lines.append((ticks[k], tick // per_bar))
                tick += 1
            k += 1
        if data[:1] in (b"\xfa", b"\xfb"):
            tick = 0 if data[:1] == b"\xfa" else tick
            running = True
            end = controls[index + 1][0] if index + 1 < len(controls) else sc.frames
            rolling[frame:end] = True
            per_tick = ticks[k] - ticks[k - 1] if k else PER_TICK
            into = 0 if tick == 0 else round(((tick - 1) % per_bar) * per_tick) + frame - ticks[k - 1]
            relocations[frame] = (into, float(per_bar * per_tick), max(0, tick - 1) // per_bar)
        elif data[:1] == b"\xfc":
            running = False
        elif data[:1] == b"\xf2":
            tick = 6 * (data[1] | data[2] << 7)
    return _offers_and_gains(sc, Timeline(sc.frames, rolling, lines, relocations))


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "steady_and_late": steady_and_late,
    "tempo_and_meter_changes": tempo_and_meter_changes,
    "master_leaves": master_leaves,
    "locate_stop_start": locate_stop_start,
    "odd_tempo": odd_tempo,
    "gain_and_mute": gain_and_mute,
    "own_clock_free_run": own_clock_free_run,
    "midi_clock": midi_clock,
}


# -- driving the core ------------------------------------------------------------------------

@dataclass
class Run:
    """What one scenario at one schedule gave, checked against the model when it ran (the audio
    itself is not kept: ``digest`` compares it across schedules)."""

    lines: list[tuple[int, int]]
    starts: list[tuple[int, int, int, bool, int, int, int]]
    counters: dict[str, int]
    expected_starts: list[tuple[int, int, int, bool, int, int, int]]
    expected_counters: tuple[int, int, int]
    exact_difference: str      # "" when every copied frame is the expected loop frame
    mixed_error: float         # worst relative error inside crossfades and gain ramps
    digest: str


def _apply(event: tuple, output: OfflineOutput, player: Player) -> None:
    kind, core = event[0], output.core
    if kind == "offer":
        player.offer = event[1]
    elif kind == "gain":
        core.send("GAIN", a=event[1])  # type: ignore[union-attr]
    elif kind == "own_tempo":
        core.send("OWN_TEMPO", a=event[1])  # type: ignore[union-attr]
    elif kind == "midi_meter":
        core.send("MIDI_METER", i=event[1])  # type: ignore[union-attr]
    elif kind == "free_run":
        core.send("FREE_RUN", i=int(event[1]))  # type: ignore[union-attr]
    elif kind == "midi":
        output.send_midi(output.jack_frame, event[1])
    elif kind == "locate":
        output.transport.locate(event[1])
    elif kind == "tempo":
        output.transport.set_tempo(event[1])
    else:
        getattr(output.transport, kind)()


@functools.lru_cache(maxsize=None)
def run(name: str, schedule_name: str) -> Run:
    sc = SCENARIOS[name]()
    output = sc.make()
    core = output.core
    player = Player(core)  # type: ignore[arg-type]
    blocks = schedule(schedule_name, sc.frames)
    assert sum(blocks) == sc.frames
    midi, m, at, lines = sc.midi, 0, 0, []
    for size in blocks:
        for event in sc.events.get(at, []):
            _apply(event, output, player)
        while m < len(midi) and midi[m][0] < at + size:
            output.send_midi(*midi[m])
            m += 1
        output.run(1, size)
        at += size
        if len(output.blocks) % 512 == 0:
            lines += core.drain_bar_lines()  # type: ignore[union-attr]
    lines += core.drain_bar_lines()  # type: ignore[union-attr]
    timeline = sc.timeline(sc)  # type: ignore[misc]
    timeline.blocks = blocks
    expected = PlayerModel(FADE).run(timeline)
    audio, want = output.recording(), expected.audio
    mixed = expected.mixed_mask(FADE.frames)
    error = np.abs(audio[mixed] - want[mixed]) / np.maximum(np.abs(want[mixed]), 1.0)
    return Run([(line.jack_frame, line.bar) for line in lines],
               [(s.jack_frame, s.bar, s.serial, s.new, s.into, s.version, s.offset)
                for s in core.clip_starts()],  # type: ignore[union-attr]
               {name: core.counter(name) for name in ("late", "repeats", "resyncs", "bars_lost",  # type: ignore[union-attr]
                                                      "transport_held")},
               [(s.jack_frame, s.bar, s.serial, s.new, s.into, s.version, s.offset) for s in expected.starts],
               (expected.late, expected.repeats, expected.resyncs),
               _first_difference(audio, want, ~mixed), float(error.max()) if error.size else 0.0,
               hashlib.sha1(audio.tobytes()).hexdigest())


def _first_difference(got: np.ndarray, want: np.ndarray, mask: np.ndarray) -> str:
    bad = np.flatnonzero(mask & np.any(got != want, axis=1))
    if not bad.size:
        return ""
    f = int(bad[0])
    return (f"{bad.size} frames differ; first at output frame {f}: core played {got[f].tolist()}, "
            f"expected {want[f].tolist()} (values are loop frame + 1, right adds serial * 1e6)")


@pytest.mark.parametrize("schedule_name", SCHEDULES)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_core_output_matches_the_expected_loop_frames(name: str, schedule_name: str) -> None:
    result = run(name, schedule_name)
    assert result.lines == sorted(set(result.lines)), "bar lines out of order"
    assert result.starts == result.expected_starts
    counters = result.counters
    assert (counters["late"], counters["repeats"], counters["resyncs"]) == result.expected_counters
    assert counters["bars_lost"] == 0
    assert result.exact_difference == ""  # copied loop frames: exact
    assert result.mixed_error <= 1e-6  # crossfades (equal-power mix) and gain ramps


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bar_lines_fall_where_the_scenario_puts_them(name: str) -> None:
    sc = SCENARIOS[name]()
    timeline = sc.timeline(sc)  # type: ignore[misc]
    for schedule_name in SCHEDULES:
        assert run(name, schedule_name).lines == timeline.lines, schedule_name


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_results_are_identical_across_block_sizes(name: str) -> None:
    reference = run(name, "4096")
    for schedule_name in SCHEDULES:
        result = run(name, schedule_name)
        assert result.lines == reference.lines, schedule_name
        assert result.starts == reference.starts, schedule_name
        assert result.counters == reference.counters, schedule_name
        if SCENARIOS[name]().block_invariant:
            assert result.digest == reference.digest, schedule_name


def test_the_held_grid_is_the_one_in_force_after_the_master_left() -> None:
    assert run("master_leaves", "256").counters["transport_held"] == 1
    assert run("steady_and_late", "256").counters["transport_held"] == 0


# -- issue 12: a start inside a bar ------------------------------------------------------------

@pytest.mark.parametrize("block", [64, 1024])
def test_a_start_inside_a_bar_is_heard_within_50_ms_at_the_matching_offset(block: int) -> None:
    tempo = _tempo(40960, 2)
    output = _transport_output(tempo)()
    output.block_size = block
    Player(output.core).offer = Offer(next=index_loop(1, 40960, 1, 2))  # type: ignore[arg-type]
    output.run((40960 + 24576) // block)
    output.transport.stop()
    output.run(8192 // block)
    output.transport.start()
    into = output.transport.frame - 40960
    heard = output.run(4096 // block)[:, 0]
    ms50 = RATE // 20
    assert heard[ms50] == into + ms50 + 1, f"50 ms after the start: loop frame {heard[ms50] - 1:.0f}, expected {into + ms50}"
