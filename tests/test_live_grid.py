"""The native core's bar grid, own clock, timebase, MIDI clock and MIDI ring, driven offline
(OfflineOutput + Core, no JACK), and the pure logic of the crossfade and the seed walk."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from bridge.live.core import BarLine, Core
from bridge.live.crossfade import Crossfade
from bridge.live.offline import OfflineOutput, OfflineTransport
from bridge.live.timebase import POSITION_BBT, TRANSPORT_ROLLING, Timebase, new_position
from bridge.live.walk import Point, SeedWalk
from bridge.state import ControlState
from bridge.timing import Meter, Tempo

RATE, BLOCK = 44100, 256


class FilledTransport:
    """A rolling transport whose BBT comes from ``fill(pos, frame)`` (an independent master)."""

    def __init__(self, fill: Callable[[Any, int], None]) -> None:
        self.fill, self.frame, self._pos = fill, 0, new_position()

    def query(self) -> tuple[int, Any]:
        self._pos.frame = self.frame
        self.fill(self._pos, self.frame)
        return TRANSPORT_ROLLING, self._pos

    def advance(self, frames: int) -> None:
        self.frame += frames


def _output(transport: Any = None, bpm: float = 120.0, free_run: bool = False,
            block: int = BLOCK) -> OfflineOutput:
    output = OfflineOutput(RATE, block, transport or OfflineTransport(RATE))
    output.attach(Core(RATE, Tempo(bpm).frames_per_bar(RATE), Crossfade.for_rate(RATE), free_run))
    return output


def _lines(output: OfflineOutput, blocks: int, block: int | None = None) -> list[BarLine]:
    """Run ``blocks`` blocks, draining bar lines as the engine's monitor does (the log holds 1024)."""
    lines: list[BarLine] = []
    for done in range(0, blocks, 500):
        output.run(min(500, blocks - done), block)
        lines += output.core.drain_bar_lines()  # type: ignore[union-attr]
        output.blocks.clear()
    return lines


def test_crossfade_is_equal_power_and_starts_at_the_joint() -> None:
    fade = Crossfade.for_rate(44100, 5.0)
    assert fade.frames == 220
    assert fade.fade_in[0] == 0.0 and fade.fade_out[0] == 1.0
    np.testing.assert_allclose(fade.fade_in ** 2 + fade.fade_out ** 2, 1.0, atol=1e-6)
    assert np.all(np.diff(fade.fade_in) > 0)


@pytest.mark.parametrize("bpm", [120.0, 97.3, 174.0])
def test_bar_lines_from_timebase_bbt_fall_on_exact_bar_frames(bpm: float) -> None:
    output = _output(OfflineTransport(RATE, Tempo(bpm)), bpm)
    lines = _lines(output, 2000)
    fpb = Tempo(bpm).frames_per_bar(RATE)
    expected = [round(k * fpb) for k in range(len(lines))]
    assert [line.bar for line in lines] == list(range(len(lines)))
    assert max(abs(line.frame - e) for line, e in zip(lines, expected)) <= 1
    assert all(line.jack_frame == line.frame and line.source == "transport" for line in lines)
    assert all(line.frames_per_bar == pytest.approx(fpb) for line in lines)
    assert len(lines) == int(2000 * BLOCK / fpb) + 1
    assert output.core.counter("bars_lost") == 0  # type: ignore[union-attr]


def test_truncated_ticks_give_stable_lines_within_a_tick() -> None:
    bpm = 133.0
    fpbeat = RATE * 60 / bpm

    def fill(pos: Any, frame: int) -> None:  # an independent master in 3/4, ticks floored
        beats = frame / fpbeat
        pos.bar, pos.beat = int(beats // 3) + 1, int(beats % 3) + 1
        pos.tick = int((beats - int(beats)) * 960)
        pos.beats_per_bar, pos.beat_type, pos.ticks_per_beat, pos.beats_per_minute = 3.0, 4.0, 960.0, bpm
        pos.valid = POSITION_BBT

    lines = _lines(_output(FilledTransport(fill), bpm), 3000)
    truth = [k * 3 * fpbeat for k in range(len(lines))]
    assert len(lines) == int(3000 * BLOCK / (3 * fpbeat)) + 1
    assert [line.bar for line in lines] == list(range(len(lines)))
    assert max(abs(line.frame - t) for line, t in zip(lines, truth)) <= fpbeat / 960 + 1
    spacing = np.diff([line.frame for line in lines])
    assert spacing.max() - spacing.min() <= 1


def test_timebase_tempo_change_applies_on_the_next_bar_line() -> None:
    timebase = Timebase(Tempo(120), RATE)
    pos = new_position()
    timebase.fill(pos, 1000)
    timebase.request(Tempo(90))
    timebase.fill(pos, 50000)  # still bar 1 (bar 0 in 0-based) at 120 BPM
    assert pos.beats_per_minute == 120 and pos.bar == 1
    timebase.fill(pos, 88200)  # first frame of the second bar: new tempo from here
    assert (pos.bar, pos.beat, pos.tick, pos.beats_per_minute) == (2, 1, 0, 90)
    timebase.fill(pos, 88200 + 117600)
    assert (pos.bar, pos.beat, pos.tick) == (3, 1, 0)
    assert timebase.tempo == Tempo(90)


@pytest.mark.parametrize("block", [64, 256, 1024])
def test_a_master_tempo_change_moves_the_grid_from_its_next_bar_line(block: int) -> None:
    output = _output(OfflineTransport(RATE, Tempo(120)), block=block)
    lines = _lines(output, 100000 // block)  # inside bar 1
    output.transport.set_tempo(Tempo(100, Meter(3)))  # 79380 frames per bar from bar 2 on
    lines += _lines(output, (88200 + 5 * 79380) // block)
    assert [(line.bar, line.frame, line.frames_per_bar) for line in lines[:3]] == [
        (0, 0, 88200.0), (1, 88200, 88200.0), (2, 176400, 88200.0)]
    later = lines[3:]
    assert len(later) >= 4
    assert [line.bar for line in later] == list(range(3, 3 + len(later)))
    assert {line.frames_per_bar for line in later} == {79380.0}
    assert max(abs(line.frame - (176400 + 79380 * (line.bar - 2))) for line in later) <= 1


def test_relocation_is_reported_and_the_next_line_follows_the_new_position() -> None:
    output = _output(OfflineTransport(RATE, Tempo(120)))
    reports = []
    for frame in [0, 256, 512, 100000, 100256]:
        output.transport.locate(frame)
        output.run(1)
        pos = output.core.struct.position  # type: ignore[union-attr]
        reports.append((bool(pos.relocated), pos.bar_offset, pos.bar))
    assert reports[0] == (True, 0, 0)
    assert reports[1][:2] == (False, -1)
    assert reports[3] == (True, -1, 1)
    assert reports[4] == (False, -1, 1)
    output.transport.locate(2 * 88200 - 100)  # a block that holds a bar line right after a locate
    output.run(1)
    pos = output.core.struct.position  # type: ignore[union-attr]
    tick = 22050 / 1920  # the master's BBT ticks floor the position: the first line may be a tick late
    assert bool(pos.relocated) and pos.bar == 2 and 100 <= pos.bar_offset <= 100 + tick
    output.run(88200 // BLOCK + 1)  # later blocks refine the bar start: the next line is exact
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [line.bar for line in lines] == [0, 2, 3]
    assert lines[0].frame == 0 and abs(lines[2].frame - 3 * 88200) <= 1


class LateMasterTransport(OfflineTransport):
    """A rolling master whose published position is out of step with JACK's clock in some
    blocks, as JACK2 publishes it when the timebase master is late: ``script`` maps a block's
    index to the (frame, BBT frame) published in it, as offsets from where the block really is."""

    def __init__(self, tempo: Tempo, script: dict[int, tuple[int, int]]) -> None:
        super().__init__(RATE, tempo)
        self.script, self.block = script, 0

    def query(self) -> tuple[int, Any]:
        state, pos = super().query()
        frame_offset, bbt_offset = self.script.get(self.block, (0, 0))
        self.timebase.fill(pos, self.frame + bbt_offset)  # type: ignore[union-attr]
        pos.frame = self.frame + frame_offset
        return state, pos

    def advance(self, frames: int) -> None:
        super().advance(frames)
        self.block += 1


def _reports(output: OfflineOutput, blocks: int) -> list[tuple[int, bool, int]]:
    """(frame placed at, relocated, frames into the bar) of each block."""
    reports = []
    for _ in range(blocks):
        output.run(1)
        pos = output.core.struct.position  # type: ignore[union-attr]
        reports.append((int(pos.frame), bool(pos.relocated), int(pos.into)))
    return reports


def test_a_transport_that_stands_still_and_stays_behind_is_followed_like_a_locate() -> None:
    # from block 401 on, the published frame stays one block behind JACK's clock
    script = {k: (-BLOCK, -BLOCK) for k in range(401, 800)}
    script[401] = (-BLOCK, 0)  # the stand-still block shows the BBT of the block it should be
    output = _output(LateMasterTransport(Tempo(120), script))
    reports = _reports(output, 404)
    at = 401 * BLOCK  # inside bar 1 (88200 frames a bar)
    # two blocks are held on the grid where the transport should have been ...
    assert reports[400:403] == [(at - BLOCK, False, at - BLOCK - 88200), (at, False, at - 88200),
                                (at + BLOCK, False, at + BLOCK - 88200)]
    # ... then the transport is followed where it stays: a jump back of one block, placed on
    # the grid in force (the master's bar lines stay on the transport's frames)
    assert reports[403] == (at + BLOCK, True, at + BLOCK - 88200)
    output.run(88200 // BLOCK)
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.frame) for line in lines] == [(0, 0), (1, 88200), (2, 176400)]


def test_a_stand_still_that_catches_up_with_a_stale_bbt_is_not_heard() -> None:
    block = 88200 // BLOCK  # the block that holds bar 1's line
    script = {block: (-BLOCK, -BLOCK), block + 1: (0, -BLOCK)}
    output = _output(LateMasterTransport(Tempo(120), script))
    reports = _reports(output, 2 * 88200 // BLOCK + 1)
    assert not any(relocated for _, relocated, _ in reports[1:])  # (the first block starts the grid)
    assert [frame for frame, _, _ in reports] == [k * BLOCK for k in range(len(reports))]
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.frame) for line in lines] == [(0, 0), (1, 88200), (2, 176400)]


def test_a_stale_bbt_for_one_block_leaves_the_bar_line_in_it_exact() -> None:
    block = 88200 // BLOCK
    output = _output(LateMasterTransport(Tempo(120), {block: (0, -BLOCK)}))
    output.run(2 * 88200 // BLOCK + 1)
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.frame) for line in lines] == [(0, 0), (1, 88200), (2, 176400)]
    assert output.core.struct.position.relocated == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("late", [3, 6, 40])
def test_a_frozen_bbt_from_a_master_late_for_several_blocks_is_not_heard(late: int) -> None:
    # the master misses `late` cycles around bar 1's line: JACK moves the frame on and keeps the
    # BBT it last published, which falls one more block behind each block
    first = 88200 // BLOCK - 2
    script = {first + k: (0, -(k + 1) * BLOCK) for k in range(late)}
    output = _output(LateMasterTransport(Tempo(120), script))
    reports = _reports(output, 2 * 88200 // BLOCK + 1)
    assert not any(relocated for _, relocated, _ in reports[1:])
    assert [(frame, into) for frame, _, into in reports] == [(k * BLOCK, k * BLOCK % 88200) for k in range(len(reports))]
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.frame) for line in lines] == [(0, 0), (1, 88200), (2, 176400)]


@pytest.mark.parametrize("late", [1, 3, 6])
def test_after_a_jump_of_jacks_clock_a_master_late_by_whole_blocks_is_placed_by_the_grid(late: int) -> None:
    # an xrun: from block 400 on the transport is 8 blocks further on; in that first block the
    # master's BBT is still `late` blocks old (klick did this at its meter change on CI)
    jump = 8 * BLOCK
    script = {k: (jump, jump) for k in range(400, 1000)}
    script[400] = (jump, jump - late * BLOCK)
    output = _output(LateMasterTransport(Tempo(120), script))
    reports = _reports(output, 402)
    frame = 400 * BLOCK + jump
    assert reports[400] == (frame, True, frame % 88200)  # a jump, at the offset of the grid in force
    assert reports[401] == (frame + BLOCK, False, (frame + BLOCK) % 88200)


def test_a_master_that_really_moves_its_bar_lines_by_a_few_frames_is_followed() -> None:
    shift = 100  # from block 400 on, every bar line 100 frames later (continuous frames)
    output = _output(LateMasterTransport(Tempo(120), {k: (0, -shift) for k in range(400, 1000)}))
    output.run(3 * 88200 // BLOCK)
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.frame) for line in lines] == [(0, 0), (1, 88200), (2, 176400 + shift)]


def test_own_clock_changes_tempo_only_on_a_bar_line() -> None:
    output = _output(OfflineTransport(RATE), 120.0)  # rolling, no timebase master: our own clock
    lines = _lines(output, 100000 // BLOCK)
    output.core.send("OWN_TEMPO", a=117600.0)  # type: ignore[union-attr]
    lines += _lines(output, 500000 // BLOCK)
    end = output.jack_frame
    expected = [0, 88200, 176400] + [176400 + k * 117600 for k in range(1, 5) if 176400 + k * 117600 < end]
    assert [line.frame for line in lines] == expected
    assert [line.frames_per_bar for line in lines] == [88200.0] * 3 + [117600.0] * (len(expected) - 3)
    assert [line.bar for line in lines] == list(range(len(expected)))
    assert {line.source for line in lines} == {"control"}
    assert output.core.tempo_source == "control"  # type: ignore[union-attr]


def test_own_clock_free_runs_on_its_own_frames_while_the_transport_is_stopped() -> None:
    output = _output(OfflineTransport(RATE, rolling=False), 100.0, free_run=True)
    lines = _lines(output, 300000 // BLOCK)
    assert [(line.bar, line.jack_frame) for line in lines] == [(0, 0), (1, 105840), (2, 211680)]
    output.core.send("FREE_RUN", i=0)  # type: ignore[union-attr]
    assert _lines(output, 100000 // BLOCK) == []


def _clock_events(bpm: float, ticks: int, start: int = 1000) -> list[tuple[int, bytes]]:
    per_tick = RATE * 60 / bpm / 24
    return [(start - 10, b"\xfa")] + [(start + round(k * per_tick), b"\xf8") for k in range(ticks)]


def _midi_output() -> OfflineOutput:
    return _output(OfflineTransport(RATE, rolling=False))


def test_midi_clock_bar_lines_and_tempo() -> None:
    output = _midi_output()
    events = _clock_events(100.0, 24 * 4 * 3 + 1)
    for frame, data in events:
        output.send_midi(frame, data)
    lines = _lines(output, events[-1][0] // BLOCK + 1)
    per_bar = RATE * 60 / 100.0 * 4
    assert [line.bar for line in lines] == [0, 1, 2, 3]
    assert [line.jack_frame for line in lines] == [events[1 + 96 * k][0] for k in range(4)]
    assert np.allclose(np.diff([line.jack_frame for line in lines]), per_bar, atol=1)
    assert lines[0].jack_frame == 1000 and {line.source for line in lines} == {"midi"}
    clock = output.core.struct.midi_clock  # type: ignore[union-attr]
    assert 60 * RATE / 24 / clock.frames_per_tick == pytest.approx(100.0, abs=0.01)
    assert (clock.running, clock.seen, clock.lost) == (1, 24 * 4 * 3 + 1, 0)
    output.send_midi(output.jack_frame, b"\xfc")
    output.run(1)
    assert not clock.running and not output.core.struct.position.rolling  # type: ignore[union-attr]


def _run_past(output: OfflineOutput, frame: int) -> None:
    """Run blocks until the block holding ``frame`` has been processed."""
    while output.jack_frame <= frame:
        output.run(1)


def test_midi_song_position_moves_the_tick_counter_and_continue_resumes_on_its_bar() -> None:
    output = _midi_output()
    per_tick = RATE * 60 / 100.0 / 24
    events = _clock_events(100.0, 300)  # start; the source keeps ticking while stopped
    tick_frame = [frame for frame, data in events if data == b"\xf8"]
    for frame, data in events:
        output.send_midi(frame, data)
    output.send_midi(tick_frame[47] + 10, b"\xfc")
    output.send_midi(tick_frame[60] + 10, b"\xf2\x20\x00")  # 32 sixteenths = 2 bars of 4/4
    output.send_midi(tick_frame[70] + 10, b"\xfb")
    _run_past(output, tick_frame[60] + 10)
    clock, pos = output.core.struct.midi_clock, output.core.struct.position  # type: ignore[union-attr]
    assert clock.tick == 192 and pos.relocated and not pos.rolling
    _run_past(output, tick_frame[71 + 96])
    lines = output.core.drain_bar_lines()  # type: ignore[union-attr]
    assert [(line.bar, line.jack_frame) for line in lines] == [
        (0, tick_frame[0]), (2, tick_frame[71]), (3, tick_frame[71 + 96])]
    assert tick_frame[71 + 96] - tick_frame[71] == round(96 * per_tick)
    assert clock.tick == 192 + 97 and clock.lost == 0


def test_midi_ring_keeps_short_messages_and_counts_drops() -> None:
    output = _midi_output()
    core = output.core
    output.send_midi(10, b"\xb0\x07\x40")
    output.send_midi(11, b"\xf0\x01\x02\x03\xf7")  # sysex: longer than the ring's 3-byte slots
    output.send_midi(12, b"\xf8")  # clock bytes drive the clock, never the ring
    for k in range(1030):  # the ring holds 1024 messages; a block reads at most 1024 events
        output.send_midi(20 + k, bytes([0x90, k % 128, 100]))
    output.run(10)
    messages = core.drain_midi()  # type: ignore[union-attr]
    assert [m.frame for m in messages] == [10] + [20 + k for k in range(1023)]
    assert messages[0].kind == "control_change" and messages[0].channel == 0
    assert messages[1].kind == "note_on" and messages[1].data == b"\x90\x00\x64"
    assert core.counter("midi_dropped") == 1 + 7  # type: ignore[union-attr]
    assert core.drain_midi() == []  # type: ignore[union-attr]
    output.send_midi(output.jack_frame + 3, b"\xc5\x11")
    output.run(1)
    assert [(m.data, m.frame, m.kind, m.channel) for m in core.drain_midi()] == [  # type: ignore[union-attr]
        (b"\xc5\x11", output.jack_frame - BLOCK + 3, "program_change", 5)]


def test_walk_steps_alpha_then_moves_to_the_next_seed() -> None:
    walk, state = SeedWalk(0.25), ControlState(prompt_a="jazz", prompt_b="jazz", seed_a=7)
    step, seen = None, []
    for _ in range(6):
        step = walk.next_step(step, state)
        seen.append((step.start.seed, step.end.seed, step.alpha))
    assert seen == [(7, 8, 0.0), (7, 8, 0.25), (7, 8, 0.5), (7, 8, 0.75), (7, 8, 1.0), (8, 9, 0.25)]


def test_walk_interpolates_from_the_old_prompt_to_a_new_one() -> None:
    walk = SeedWalk(0.25)
    step = walk.next_step(None, ControlState(prompt_a="jazz", prompt_b="jazz", seed_a=7))
    step = walk.next_step(step, ControlState(prompt_a="techno", prompt_b="techno", seed_a=7))
    assert (step.start, step.end.prompt, step.alpha) == (Point("jazz", 7), "techno", 0.25)
    for _ in range(3):
        step = walk.next_step(step, ControlState(prompt_a="techno", prompt_b="techno", seed_a=7))
    assert step.alpha == 1.0 and step.end.prompt == "techno"


def test_two_prompts_are_played_as_the_performer_set_them() -> None:
    walk = SeedWalk(0.25)
    state = ControlState(prompt_a="a", prompt_b="b", alpha=0.3)
    first = walk.plan(None, state)
    assert first.step.manual and first.step.alpha == 0.3
    assert walk.plan(first.step, state) == first
    request = first.request(Tempo(120, Meter(3)))
    assert request.bars == state.bars and request.beats_per_bar == 3 and request.prompt_b == "b"
