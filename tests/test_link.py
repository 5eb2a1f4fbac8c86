"""Ableton Link as a tempo source: clocks, conversion to JACK frames, latency, commits.

Link stays disabled here (no network traffic: a disabled Link keeps its own timeline and
sends nothing). The tests with a Link peer in another process run in a private network
namespace: tests/test_link_netns.py.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterator

import pytest

link = pytest.importorskip("link", reason="LinkPython-extern (riff-bridge[link]) not installed")

from bridge.errors import ParameterError  # noqa: E402
from bridge.live.jacktime import CycleTimes, JackClock, JackClockError, clock_offset, monotonic_raw_usecs  # noqa: E402
from bridge.live.link import FrameRate, GridLog, LinkOptions, LinkSource, open_link  # noqa: E402

pytestmark = pytest.mark.jack


@pytest.fixture()
def client(jack_server: object) -> Iterator[Any]:
    """An active JACK client on the private server, with two output ports."""
    import jack

    client = jack.Client("link-test", no_start_server=True)
    client.outports.register("out_L")
    client.outports.register("out_R")
    client.activate()
    clock = JackClock(client)
    deadline = time.monotonic() + 10.0
    while True:  # until the server has run a cycle with us (later on a busy machine)
        try:
            clock.cycle()
            break
        except JackClockError:
            assert time.monotonic() < deadline, "no JACK cycle in 10 s"
            time.sleep(0.01)
    yield client
    client.deactivate()
    client.close()


def test_jack_and_link_read_the_same_clock(client: Any) -> None:
    """Both are CLOCK_MONOTONIC_RAW on Linux: the bracketed offsets are within a few us."""
    clock, session = JackClock(client), open_link(97.0, enabled=False)
    jack_link, spread = clock_offset(clock.now_usecs, session.clock().micros)
    jack_raw, _ = clock_offset(clock.now_usecs, monotonic_raw_usecs)
    mono, _ = clock_offset(clock.now_usecs, lambda: time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
    assert abs(jack_link) <= spread + 50 and abs(jack_raw) <= 50
    print(f"JACK - Link {jack_link:+.1f} us (+-{spread:.1f}), JACK - MONOTONIC {mono:+.0f} us")


def test_cycle_just_after_a_dll_reset_takes_the_next_wake_up_one_period_on(client: Any) -> None:
    """jackd's ResetFrameTime (on an xrun) moves the cycle's start to the late wake-up and keeps
    the old prediction of the next one until the next cycle: not an error, one nominal period."""
    clock = JackClock(client)
    real = clock._lib

    class ResetLib:
        """libjack as it reads in the cycle after a reset: next wake-up before the start."""

        def jack_get_cycle_times(self, pointer: Any, frames: Any, usecs: Any, next_usecs: Any,
                                 period: Any) -> int:
            frames[0], usecs[0], next_usecs[0], period[0] = 44_032, 9_000_700, 9_000_000, 5805.0
            return 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    clock._lib = ResetLib()
    cycle = clock.cycle()
    assert (cycle.frames, cycle.usecs, cycle.next_usecs) == (44_032, 9_000_700, 9_006_505)
    assert cycle.frame_at(9_000_700 + 5805 / 2) == pytest.approx(44_032 + client.blocksize / 2)


def test_frame_at_agrees_with_libjack_time_to_frames(client: Any) -> None:
    """Our float interpolation of the cycle times is libjack's jack_time_to_frames, unrounded."""
    clock = JackClock(client)
    for ahead in (0, 1000, 20000, 500000):
        cycle = clock.cycle()
        usecs = cycle.usecs + ahead
        ours = cycle.frame_at(usecs)
        theirs = clock.time_to_frames(usecs)
        if clock.cycle() == cycle:  # no new cycle in between
            assert abs(ours - theirs) <= 1.0, (ahead, ours, theirs)
        assert abs(cycle.usecs_at(ours) - usecs) < 1e-6


def test_frame_rate_uses_a_long_sliding_baseline() -> None:
    """Two cycles seconds apart give the rate; before that, the nominal rate (never one
    cycle's span); the baseline slides; a frame counter that jumps (new server) starts it
    again."""
    rate = FrameRate()
    nominal = 44100 / 1e6
    assert rate.update(CycleTimes(1000, 10_000_000, 10_005_806, 256, 44100)) == pytest.approx(nominal)
    assert rate.update(CycleTimes(1000 + 441_150, 20_000_000, 20_005_805, 256, 44100)) == pytest.approx(0.044115)
    for second in range(22, 62, 2):  # the rate changes: the window follows it within 20 s
        frames = 1000 + 441_150 + (second - 20) * 44_110
        latest = rate.update(CycleTimes(frames % 2**32, second * 1_000_000, second * 1_000_000 + 5792, 256, 44100))
    assert latest == pytest.approx(0.04411)
    wrapped = FrameRate()
    wrapped.update(CycleTimes(2**32 - 100, 20_000_000, 20_005_806, 256, 44100))
    assert wrapped.update(CycleTimes((2**32 - 100 + 441_150) % 2**32, 30_000_000, 30_005_806, 256, 44100)) == \
        pytest.approx(0.044115)
    assert wrapped.update(CycleTimes(512, 33_000_000, 33_005_806, 256, 44100)) == pytest.approx(nominal)  # new server
    # one cycle whose span is 3 % short (the driver woke late; the DLL moved the next wake-up)
    # is no reading of the rate: still the nominal one, and the baseline after it is exact
    assert wrapped.update(CycleTimes(768, 33_005_806, 33_011_440, 256, 44100)) == pytest.approx(nominal)
    assert wrapped.update(CycleTimes(512 + 88_230, 35_000_000, 35_005_806, 256, 44100)) == pytest.approx(0.044115)
    # a server at another rate starts again from its own nominal rate
    assert wrapped.update(CycleTimes(512, 36_000_000, 36_005_333, 256, 48000)) == pytest.approx(0.048)


def _independent_grid(session: Any, client: Any, quantum: float, latency: int) -> tuple[int, float, float]:
    """The grid computed another way: Link's beat timeline at now, libjack's own
    jack_time_to_frames (Link time = JACK time, checked above), and the latency subtracted."""
    clock = JackClock(client)
    state = session.captureAppSessionState()
    heard = session.clock().micros() + round(latency / client.samplerate * 1e6)
    bar = math.floor(state.beatAtTime(heard, quantum) / quantum)
    start, end = (state.timeAtBeat(b * quantum, quantum) for b in (bar, bar + 1))
    return bar, clock.time_to_frames(start) - latency, (end - start) * client.samplerate / 1e6


@pytest.mark.parametrize("latency", [0, 1536])
def test_grid_matches_links_timeline_in_jack_frames(client: Any, latency: int) -> None:
    """Bar index, bar start (write frame) and bar length against an independent conversion."""
    session, sink = open_link(97.0, enabled=False), GridLog()
    source = LinkSource(session, JackClock(client), sink, LinkOptions(beats_per_bar=4), latency=lambda: latency)
    clock = JackClock(client)
    for _ in range(50):  # until both readings fall in one JACK cycle, within one bar
        before = clock.cycle()
        grid = source.step()
        bar, start, length = _independent_grid(session, client, 4.0, latency)
        if bar == grid.bar and clock.cycle() == before:
            break
        time.sleep(0.001)
    assert grid.bar == bar and grid.bpm == pytest.approx(97.0)
    assert abs(grid.bar_start_jack_frame - start) <= 2.0  # rounding of two conversions
    # the dummy driver's frame clock runs a little off wall time; a bar is within 0.1 %
    assert grid.frames_per_bar == pytest.approx(length, rel=1e-3)
    assert grid.latency_frames == latency and grid.rolling and sink.grids[-1][0] == grid.bar
    assert grid.bar_line(grid.bar + 2) == pytest.approx(start + 2 * grid.frames_per_bar, abs=2.0)


def test_written_bar_line_is_heard_on_links_bar_line(client: Any) -> None:
    """A bar line written at its JACK frame, plus the latency, is heard at Link's bar time."""
    session = open_link(133.0, enabled=False)
    clock = JackClock(client)
    source = LinkSource(session, clock, GridLog(), LinkOptions(beats_per_bar=3), latency=lambda: 2048)
    grid = source.step()
    cycle = clock.cycle()
    heard_usecs = cycle.usecs_at(grid.bar_line(grid.bar + 1) + 2048) - grid.offset_usecs
    state = session.captureAppSessionState()
    assert state.phaseAtTime(round(heard_usecs), 3.0) == pytest.approx(0.0, abs=1e-3) or \
        state.phaseAtTime(round(heard_usecs), 3.0) == pytest.approx(3.0, abs=1e-3)


def test_playback_latency_of_our_ports_counts_what_they_feed(client: Any) -> None:
    """jack_port_get_latency_range: 0 when connected nowhere; the dummy driver's playback
    latency (one period here) once connected to system:playback."""
    clock = JackClock(client)
    ports = [client.get_port_by_name("link-test:out_L"), client.get_port_by_name("link-test:out_R")]
    assert clock.playback_latency(ports).max == 0
    for port, target in zip(ports, ("system:playback_1", "system:playback_2")):
        client.connect(port, target)
    time.sleep(0.3)
    system = clock.playback_latency([client.get_port_by_name("system:playback_1")])
    ours = clock.playback_latency(ports)
    assert ours.max == system.max and ours.max > 0
    print(f"playback latency system:playback_1 {system}, ours {ours}")


def test_tempo_request_is_committed_on_the_next_bar_line(client: Any) -> None:
    """With commit_tempo, the session's tempo changes at a bar line; phase stays on the bar."""
    session = open_link(97.0, enabled=False)
    source = LinkSource(session, JackClock(client), GridLog(), LinkOptions(commit_tempo=True))
    before = session.captureAppSessionState()
    assert source.request_tempo(111.0)
    deadline = time.monotonic() + 3 * 4 * 60 / 97
    while session.captureAppSessionState().tempo() != pytest.approx(111.0) and time.monotonic() < deadline:
        source.step()
        time.sleep(0.005)
    after = session.captureAppSessionState()
    assert after.tempo() == pytest.approx(111.0)
    # the change happened on a bar line: before it, the old timeline; bar lines after it on the new
    change = next(b for b in range(-64, 64)
                  if abs(after.timeAtBeat(b * 4.0, 4.0) - before.timeAtBeat(b * 4.0, 4.0)) <= 1)
    assert after.timeAtBeat((change + 1) * 4.0, 4.0) - after.timeAtBeat(change * 4.0, 4.0) == \
        pytest.approx(4 * 60e6 / 111, abs=2)


def test_without_timebase_master_our_tempo_is_not_committed(client: Any) -> None:
    session = open_link(97.0, enabled=False)
    source = LinkSource(session, JackClock(client), GridLog())
    assert not source.request_tempo(111.0)
    source.step()
    assert session.captureAppSessionState().tempo() == pytest.approx(97.0)
    with pytest.raises(ParameterError, match="bpm"):
        source.request_tempo(5000)


def test_start_stop_sync_rolling_follows_the_play_state(client: Any) -> None:
    session = open_link(120.5, enabled=False)
    source = LinkSource(session, JackClock(client), GridLog(), LinkOptions(start_stop_sync=True))
    assert not source.step().rolling
    source.set_playing(True)
    deadline = time.monotonic() + 3 * 4 * 60 / 120.5
    while not source.step().rolling and time.monotonic() < deadline:
        time.sleep(0.005)
    state = session.captureAppSessionState()
    assert state.isPlaying() and source.last.rolling
    assert state.phaseAtTime(state.timeForIsPlaying(), 4.0) == pytest.approx(0.0, abs=1e-3)  # on a bar line
    assert source.status() | {} == {"tempo_source": "link", "link_peers": 0, "link_bpm": pytest.approx(120.5),
                                    "link_playing": True, "link_latency_frames": 0}


def test_options_reject_bad_values() -> None:
    with pytest.raises(ParameterError, match="beats_per_bar"):
        LinkOptions(beats_per_bar=0)
    with pytest.raises(ParameterError, match="period"):
        LinkOptions(period=2.0)


def test_thread_feeds_the_sink_and_clears_on_stop(client: Any) -> None:
    session, sink = open_link(97.0, enabled=False), GridLog()
    source = LinkSource(session, JackClock(client), sink)
    source.start()
    time.sleep(0.3)
    source.stop()
    assert len(sink.grids) >= 10 and sink.cleared == 1 and source.errors == 0
    bars = [g[0] for g in sink.grids]
    assert bars == sorted(bars)


def _binding(client: Any, **options: Any) -> tuple[Any, Any, GridLog]:
    from types import SimpleNamespace

    from bridge.live.linkbinding import LinkBinding
    from bridge.state import StateStore

    store, sink = StateStore(), GridLog()
    store.set("bpm", 103.0)
    output = SimpleNamespace(client=client)
    binding = LinkBinding(store, output, sink, LinkOptions(**options),
                          session_factory=lambda bpm: open_link(bpm, enabled=False))
    return binding, store, sink


def test_binding_starts_at_the_control_tempo_and_commits_changes_only(client: Any) -> None:
    binding, store, sink = _binding(client, commit_tempo=True)
    with binding:
        time.sleep(0.1)
        session = binding.source.session
        assert session.captureAppSessionState().tempo() == pytest.approx(103.0)
        assert binding.status()["link_peers"] == 0 and binding.describe() == "link 0 peers"
        store.update({"bpm": 103.0, "alpha": 0.5})  # a preset repeating the tempo: nothing to commit
        assert binding.source._pending_tempo is None
        store.set("bpm", 92.0)
        deadline = time.monotonic() + 3 * 4 * 60 / 103
        while session.captureAppSessionState().tempo() != pytest.approx(92.0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert session.captureAppSessionState().tempo() == pytest.approx(92.0)
        time.sleep(0.05)
        assert sink.grids[-1][4] == pytest.approx(92.0)
    assert binding.status() == {} and sink.cleared == 1


def test_binding_reads_latency_of_the_outputs_and_follows_a_reopened_client(client: Any) -> None:
    import jack

    from bridge.live.linkbinding import OutputClock

    binding, _, _ = _binding(client)
    clock = OutputClock(binding.output)
    for port, target in zip(client.outports, ("system:playback_1", "system:playback_2")):
        client.connect(port, target)
    assert clock.output_latency() == 512  # the dummy driver's playback latency at 256 frames
    assert clock.output_latency(extra_ms=10.0) == 512 + 441
    other = jack.Client("link-test-2", no_start_server=True)
    other.activate()
    try:
        binding.output.client = other  # the output reopened its client after a server restart
        assert clock.cycle().frames >= 0 and clock.output_latency() == 0
        binding.output.client = None
        with pytest.raises(Exception, match="closed"):
            clock.cycle()
    finally:
        other.deactivate()
        other.close()


def test_start_stop_sync_moves_the_jack_transport(client: Any) -> None:
    import jack

    binding, _, _ = _binding(client, start_stop_sync=True)
    client.transport_stop()
    with binding:
        time.sleep(0.1)
        binding.tick()
        assert client.transport_state == jack.STOPPED
        binding.source.set_playing(True)
        deadline = time.monotonic() + 3 * 4 * 60 / 103
        while not (binding.source.last and binding.source.last.rolling) and time.monotonic() < deadline:
            time.sleep(0.01)
        binding.tick()
        time.sleep(0.1)
        assert client.transport_state == jack.ROLLING
        binding.source.set_playing(False)
        deadline = time.monotonic() + 3 * 4 * 60 / 103
        while binding.source.last.rolling and time.monotonic() < deadline:
            time.sleep(0.01)
        binding.tick()
        time.sleep(0.1)
        assert client.transport_state == jack.STOPPED
