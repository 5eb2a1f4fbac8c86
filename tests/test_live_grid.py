"""Pure logic of the live engine: bar grid, own clock, timebase, MIDI clock and ring, walk."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.live.crossfade import Crossfade
from bridge.live.grid import BarGrid, BlockPosition, OwnClock
from bridge.live.midiclock import MidiClock
from bridge.live.midiring import MidiRing
from bridge.live.timebase import Timebase, TransportPosition
from bridge.live.walk import Point, SeedWalk
from bridge.state import ControlState
from bridge.timing import Meter, Tempo

RATE, BLOCK = 44100, 256


def _lines_from_bbt(fill, blocks: int, block: int = BLOCK) -> list[tuple[int, int, bool]]:
    """(frame of bar line, bar, relocated) reported by a BarGrid fed BBT from ``fill(pos, frame)``."""
    grid, out, pos, lines = BarGrid(), BlockPosition(), TransportPosition(), []
    for k in range(blocks):
        frame = k * block
        fill(pos, frame)
        fpbeat = RATE * 60.0 / pos.beats_per_minute
        into = ((pos.beat - 1) + pos.tick / pos.ticks_per_beat) * fpbeat
        out.clear(frame, 1)
        grid.update(out, frame, block, pos.bar - 1, frame - into, fpbeat * pos.beats_per_bar,
                    2 * fpbeat / pos.ticks_per_beat + 2)
        if out.bar_offset >= 0:
            lines.append((frame + out.bar_offset, out.bar, out.relocated))
    return lines


def test_crossfade_is_equal_power_and_starts_at_the_joint() -> None:
    fade = Crossfade.for_rate(44100, 5.0)
    assert fade.frames == 220
    assert fade.fade_in[0] == 0.0 and fade.fade_out[0] == 1.0
    np.testing.assert_allclose(fade.fade_in ** 2 + fade.fade_out ** 2, 1.0, atol=1e-6)
    assert np.all(np.diff(fade.fade_in) > 0)


@pytest.mark.parametrize("bpm", [120.0, 97.3, 174.0])
def test_bar_lines_from_timebase_bbt_fall_on_exact_bar_frames(bpm: float) -> None:
    timebase = Timebase(Tempo(bpm), RATE)
    lines = _lines_from_bbt(timebase.fill, 2000)
    fpb = Tempo(bpm).frames_per_bar(RATE)
    expected = [round(k * fpb) for k in range(len(lines))]
    assert [bar for _, bar, _ in lines] == list(range(len(lines)))
    assert max(abs(f - e) for (f, _, _), e in zip(lines, expected)) <= 1
    assert len(lines) == int(2000 * BLOCK / fpb) + 1


def test_truncated_ticks_give_stable_lines_within_a_tick() -> None:
    bpm = 133.0
    fpbeat = RATE * 60 / bpm

    def fill(pos: TransportPosition, frame: int) -> None:  # an independent master, ticks floored
        beats = frame / fpbeat
        pos.bar, pos.beat = int(beats // 3) + 1, int(beats % 3) + 1
        pos.tick = int((beats - int(beats)) * 960)
        pos.beats_per_bar, pos.ticks_per_beat, pos.beats_per_minute = 3.0, 960.0, bpm

    lines = _lines_from_bbt(fill, 3000)
    truth = [k * 3 * fpbeat for k in range(len(lines))]
    assert max(abs(f - t) for (f, _, _), t in zip(lines, truth)) <= fpbeat / 960 + 1
    spacing = np.diff([f for f, _, _ in lines])
    assert spacing.max() - spacing.min() <= 1


def test_timebase_tempo_change_applies_on_the_next_bar_line() -> None:
    timebase = Timebase(Tempo(120), RATE)
    pos = TransportPosition()
    timebase.fill(pos, 1000)
    timebase.request(Tempo(90))
    timebase.fill(pos, 50000)  # still bar 1 (bar 0 in 0-based) at 120 BPM
    assert pos.beats_per_minute == 120 and pos.bar == 1
    timebase.fill(pos, 88200)  # first frame of the second bar: new tempo from here
    assert (pos.bar, pos.beat, pos.tick, pos.beats_per_minute) == (2, 1, 0, 90)
    timebase.fill(pos, 88200 + 117600)
    assert (pos.bar, pos.beat, pos.tick) == (3, 1, 0)


def test_relocation_is_reported_and_the_next_line_follows_the_new_position() -> None:
    timebase, grid, out, pos = Timebase(Tempo(120), RATE), BarGrid(), BlockPosition(), TransportPosition()
    reports = []
    for frame in [0, 256, 512, 100000, 100256]:
        timebase.fill(pos, frame)
        out.clear(frame, 1)
        into = ((pos.beat - 1) + pos.tick / pos.ticks_per_beat) * 22050
        grid.update(out, frame, BLOCK, pos.bar - 1, frame - into, 88200.0, 25)
        reports.append((out.relocated, out.bar_offset, out.bar))
    assert reports[0] == (True, 0, 0)
    assert reports[1][:2] == (False, -1)
    assert reports[3][0] is True and reports[3][1] == -1 and reports[3][2] == 1


def test_own_clock_changes_tempo_only_on_a_bar_line() -> None:
    clock = OwnClock(88200.0)
    clock.request(117600.0)
    assert clock.locate(100000) == (1, 88200.0)
    clock.on_bar_line(2, 176400)
    assert clock.locate(176400 + 117600 + 5) == (3, 176400 + 117600.0)


def _clock_events(bpm: float, ticks: int, start: int = 1000) -> list[tuple[int, bytes]]:
    per_tick = RATE * 60 / bpm / 24
    return [(start - 10, b"\xfa")] + [(start + round(k * per_tick), b"\xf8") for k in range(ticks)]


def test_midi_clock_bar_lines_and_tempo() -> None:
    clock, out = MidiClock(), BlockPosition()
    events = _clock_events(100.0, 24 * 4 * 3 + 1)
    lines, first_block, last_block = [], events[0][0] // BLOCK, events[-1][0] // BLOCK
    for block in range(first_block, last_block + 1):
        clock.begin_block()
        for frame, data in events:
            if block * BLOCK <= frame < (block + 1) * BLOCK:
                clock.handle(data[0], 0, 0, frame - block * BLOCK, frame)
        out.clear(block * BLOCK, 2)
        clock.fill(out)
        if out.bar_offset >= 0:
            lines.append(block * BLOCK + out.bar_offset)
    per_bar = RATE * 60 / 100.0 * 4
    assert np.allclose(np.diff(lines), per_bar, atol=1)
    assert lines[0] == 1000
    assert clock.bpm(RATE) == pytest.approx(100.0, abs=0.01)
    clock.handle(0xFC, 0, 0, 0, 0)
    assert not clock.running


def test_midi_song_position_moves_the_tick_counter() -> None:
    clock = MidiClock()
    clock.handle(0xF2, 32, 0, 0, 0)  # 32 sixteenths = 2 bars of 4/4
    assert clock.tick == 192 and clock.relocated


def test_midi_ring_keeps_short_messages_and_counts_drops() -> None:
    ring = MidiRing(capacity=4)
    ring.push(10, b"\xb0\x07\x40")
    ring.push(11, b"\xf0\x01\x02\x03\xf7")
    for k in range(5):
        ring.push(20 + k, bytes([0x90, 60 + k, 100]))
    messages = ring.drain()
    assert [m.frame for m in messages] == [10, 20, 21, 22]
    assert messages[0].kind == "control_change" and messages[0].channel == 0
    assert ring.dropped == 3
    assert ring.drain() == []


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
