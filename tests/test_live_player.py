"""The native core's player, driven offline with hand-made loops (no threads)."""

from __future__ import annotations

import numpy as np

from bridge.live.core import Core
from bridge.live.crossfade import Crossfade
from bridge.live.offline import OfflineOutput, OfflineTransport
from bridge.live.player import Offer, Player
from bridge.timing import Tempo
from live_fixtures import RATE, joint_and_inside_jumps, longest_silence, tone_loop

BLOCK = 256


class Rig:
    """A core with its player handover, as the live engine wires them."""

    def __init__(self, core: Core) -> None:
        self.core, self.player = core, Player(core)

    def starts(self) -> tuple:
        return self.core.clip_starts()

    def count(self, name: str) -> int:
        return self.core.counter(name)


def _rig(bpm: float = 120.0, free_run: bool = False, master: bool = True) -> tuple[OfflineOutput, Rig]:
    transport = OfflineTransport(RATE, Tempo(bpm) if master else None)
    output = OfflineOutput(RATE, BLOCK, transport)
    core = Core(RATE, Tempo(bpm).frames_per_bar(RATE), Crossfade.for_rate(RATE), free_run)
    output.attach(core)
    return output, Rig(core)


def _bars(seconds_bars: float, bpm: float = 120.0) -> int:
    return int(np.ceil(seconds_bars * 4 * 60 / bpm * RATE / BLOCK))


def test_clips_switch_on_bar_lines_without_click_or_gap() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1, freq=220))
    output.run(_bars(1.5))
    proc.player.offer = Offer(next=tone_loop(2, freq=330))
    output.run(_bars(3))
    starts = proc.starts()
    assert [(s.frame, s.serial, s.new) for s in starts] == [
        (0, 1, True), (88200, 1, False), (176400, 2, True), (264600, 2, False), (352800, 2, False)]
    audio = output.recording()
    assert longest_silence(audio[1:]) == 0
    at_joints, inside = joint_and_inside_jumps(audio, [s.frame for s in starts[1:]])
    # Pure tones are the worst case of an equal-power fade: the two gains sum to at most
    # sqrt(2), so steps may grow by that much (music's own transients dominate; the JACK
    # test checks real clips against the strict rule).
    assert at_joints <= np.sqrt(2) * inside


def test_late_generation_repeats_the_loop_and_counts_it() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1))
    output.run(_bars(1.2))
    proc.player.offer = Offer(next=proc.player.offer.next, busy=True)
    output.run(_bars(2))
    assert proc.count('late') == 2
    assert longest_silence(output.recording()[1:]) == 0


def test_nothing_to_play_is_an_underrun_then_the_first_clip_waits_for_a_bar_line() -> None:
    output, proc = _rig(120.0)
    output.run(10)
    assert proc.count('underruns') == 10
    proc.player.offer = Offer(next=tone_loop(1))
    output.run(_bars(1.1))
    assert proc.starts()[0].frame == 88200


def test_transport_stop_fades_to_silence_and_restart_begins_on_a_bar() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1))
    output.run(_bars(0.5))
    output.transport.stop()
    stopped = output.run(20)
    assert np.all(stopped[proc.core.crossfade.frames:] == 0.0)
    assert np.abs(np.diff(stopped[:240], axis=0)).max() < 0.1
    output.transport.start()
    output.run(_bars(1.0))
    starts = proc.starts()
    assert starts[-1].frame == 88200 and not starts[-1].new


def test_free_run_keeps_playing_on_our_own_clock_while_stopped() -> None:
    output, proc = _rig(100.0, free_run=True, master=False)
    output.transport.stop()
    proc.player.offer = Offer(next=tone_loop(1, bpm=100.0))
    output.run(_bars(2.5, 100.0))
    starts = proc.starts()
    assert [s.jack_frame for s in starts] == [0, 105840, 211680]
    assert longest_silence(output.recording()[1:]) == 0


def test_a_locate_inside_a_bar_plays_from_the_matching_offset_at_once() -> None:
    output, proc = _rig(120.0)
    loop = tone_loop(1, bars=2)
    proc.player.offer = Offer(next=loop)
    output.run(_bars(0.5))
    before = len(output.recording())
    output.transport.locate(88200 * 5 + 30000)
    output.run(_bars(1))
    located, repeat = proc.starts()[-2:]
    assert (located.frame, located.bar) == (88200 * 5 + 30000, 5)
    assert abs(located.into - 30000) <= 12  # BBT ticks (11.5 frames here) place the bar start
    # the loop keeps its phase: bar 5 is its second bar (it started on bar 0)
    assert located.offset == 88200 + located.into
    fade = proc.core.crossfade.frames
    heard = output.recording()[before + fade:before + fade + 2000, 0]
    np.testing.assert_allclose(heard, loop.audio[0, located.offset + fade:located.offset + fade + 2000], atol=1e-6)
    assert (repeat.frame, repeat.bar, repeat.new, repeat.offset) == (88200 * 6, 6, False, 0)


def test_tempo_change_moves_bars_and_a_refit_is_taken_at_the_next_bar() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1, bars=2))
    output.run(_bars(1.5))
    output.transport.set_tempo(Tempo(90))
    output.run(_bars(1.0))  # bar 2 starts at 176400 at 90 BPM from there
    assert proc.count('resyncs') == 0
    refit = tone_loop(1, bpm=90.0, bars=2)
    object.__setattr__(refit, "version", 1)
    proc.player.offer = Offer(next=proc.player.offer.next, refit=refit)
    output.run(_bars(2.0, 90.0))
    starts = proc.starts()
    assert [s.frame for s in starts] == [0, 176400, 176400 + 2 * 117600]
    assert proc.player.current is refit
    audio = output.recording()
    assert longest_silence(audio[1:]) == 0


def test_gain_follows_volume_with_a_ramp() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1))
    loud = output.run(40)
    proc.core.send('GAIN', a=0.0)
    ramp = output.run(1)
    quiet = output.run(10)
    assert np.abs(loud).max() > 0.3 and np.all(quiet == 0.0)
    assert np.abs(np.diff(ramp, axis=0)).max() < 0.1


def test_midi_clock_drives_bars_and_other_messages_are_queued() -> None:
    output, proc = _rig(120.0, master=False)
    output.transport.stop()
    proc.player.offer = Offer(next=tone_loop(1, bpm=90.0))
    per_tick = RATE * 60 / 90 / 24
    output.send_midi(5000, b"\xfa")
    for tick in range(24 * 4 * 3):
        output.send_midi(5000 + round(tick * per_tick), b"\xf8")
    output.send_midi(7000, b"\xb0\x10\x7f")
    output.run(int(5000 + 3 * 4 * 60 / 90 * RATE) // BLOCK)
    starts = proc.starts()
    assert [s.jack_frame for s in starts] == [5000 + round(k * 96 * per_tick) for k in range(3)]
    assert proc.core.tempo_source == "midi"
    assert 60 * RATE / 24 / proc.core.struct.midi_clock.frames_per_tick == __import__("pytest").approx(90.0, abs=0.01)
    assert [m.data for m in proc.core.drain_midi()] == [b"\xb0\x10\x7f"]


def test_a_left_loop_is_freed_by_release_retired_not_by_the_realtime_render() -> None:
    import weakref

    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1, freq=220))
    output.run(_bars(0.5))
    first = weakref.ref(proc.player.current)
    proc.player.offer = Offer(next=tone_loop(2, freq=330))  # the offer no longer holds loop 1
    output.run(_bars(1.5))
    assert proc.player.current.serial == 2
    assert first() is not None, "loop 1 was freed inside render (the realtime thread)"
    assert proc.core.release_retired() == 1
    assert first() is None
    assert proc.core.release_retired() == 0


def test_loops_are_locked_to_phrases_a_clip_arriving_mid_phrase_starts_from_its_matching_bar() -> None:
    output, proc = _rig(120.0)
    output.run(10)  # rolling, nothing offered yet: the first clip arrives in bar 0
    proc.player.offer = Offer(next=tone_loop(1, bars=2))
    output.run(_bars(2.5))
    proc.player.offer = Offer(next=tone_loop(2, bars=2, freq=330))
    output.run(_bars(3))
    starts = [(s.bar, s.serial, s.new, s.offset) for s in proc.starts()]
    # bar 1 is the second bar of a 2-bar phrase: the first clip starts there from its own second
    # bar; every later loop start (a repeat or the next clip) is on a phrase's first bar
    assert starts == [(1, 1, True, 88200), (2, 1, False, 0), (4, 2, True, 0)]


def test_a_restart_inside_a_bar_resumes_the_current_clip_and_the_offered_one_waits_for_a_bar_line() -> None:
    output, proc = _rig(120.0)
    proc.player.offer = Offer(next=tone_loop(1, bars=2))
    output.run(_bars(0.5))
    proc.player.offer = Offer(next=tone_loop(2, bars=2, freq=330))
    output.transport.locate(88200 * 5 + 30000)
    output.run(_bars(1.5))
    located, following = proc.starts()[-2:]
    assert (located.bar, located.serial, located.new) == (5, 1, False) and located.into > 0
    assert (following.bar, following.serial, following.new, following.offset) == (6, 2, True, 0)
