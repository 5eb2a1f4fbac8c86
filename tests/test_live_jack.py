"""The live engine against a private JACK server (dummy backend, 44.1 kHz, 256 frames).

Peers are separate JACK clients (tests/live_fixtures.py): a timebase master with a tempo
map chosen by the test, a recorder of riff-bridge's outputs, and a MIDI clock sender.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import numpy as np
import pytest

from bridge.engine.fake import FakeEngine
from bridge.live.engine import LiveEngine, LiveOptions
from bridge.live.jackoutput import JackOutput
from bridge.state import ControlState, StateStore
from live_fixtures import (ClockSender, Recorder, TimebaseMaster, joint_and_inside_jumps,
                           longest_silence, wait_until)

pytestmark = pytest.mark.jack
BLOCK = 256


@pytest.fixture()
def bridge_name(jack_server: object, request: pytest.FixtureRequest) -> str:
    """A client name unique to the test."""
    return f"rb-{request.node.name[5:25]}"


def _live(name: str, bars: int = 1, bpm: float = 120.0, free_run: bool = False, **output: object) -> LiveEngine:
    store = StateStore(ControlState(bpm=bpm, bars=bars, prompt_a="organ", prompt_b="organ", steps=5))
    return LiveEngine(store, FakeEngine(iterations=8), JackOutput(name, **output),  # type: ignore[arg-type]
                      LiveOptions(free_run=free_run))


def _stop_transport() -> None:
    import jack

    with jack.Client("rb-stopper", no_start_server=True) as client:
        client.transport_stop()
        client.transport_frame = 0
    time.sleep(0.1)


@contextlib.contextmanager
def _mastered(live: LiveEngine, bpm: float) -> Iterator[tuple[LiveEngine, TimebaseMaster, Recorder]]:
    """``live`` started; once its first clip is made, a recorder of its outputs and a timebase
    master at ``bpm`` that rolls the transport from 0. All stopped and closed afterwards."""
    with contextlib.ExitStack() as stack:
        stack.callback(live.start().stop)
        live.wait_for(lambda m: m.clips_generated >= 1, 60)
        recorder = Recorder([f"{live.output.name}:out_L", f"{live.output.name}:out_R"], 20.0).start()
        stack.callback(recorder.close)
        master = TimebaseMaster(bpm).start()
        stack.callback(master.close)
        yield live, master, recorder


def _check_recording(recorder: Recorder, live: LiveEngine) -> None:
    """No gap after the first loop start; joint steps no larger than steps inside clips.

    Checked on what was output, on JACK's frame time, in every gap-free run of the recording
    (the Python recorder misses blocks on a busy machine; those gaps are its own). On transport
    frames a block that the transport stands still for (a late timebase master) would be
    recorded over, and show a jump that was never played.
    """
    starts = live.boundaries()
    checked, at_joints, within = 0, 0.0, 0.0
    for audio, first in recorder.runs_jack(BLOCK):
        lo = max(first, starts[0].jack_frame + 1)
        played = audio[lo - first:]
        if len(played) < BLOCK:
            continue
        assert longest_silence(played) == 0, (lo, len(played))
        joints = [s.jack_frame - lo for s in starts if lo <= s.jack_frame < first + len(audio)]
        jumps = joint_and_inside_jumps(played, joints)
        checked, at_joints, within = checked + len(played), max(at_joints, jumps[0]), max(within, jumps[1])
    assert checked > 3 * 44100, f"recording too short: {checked} frames in gap-free runs"
    # an equal-power fade's gains sum to at most sqrt(2): steps at a joint may grow that much
    # (tests/test_live_player.py); a click (a hard cut) would be far larger
    assert at_joints <= np.sqrt(2) * within, (at_joints, within, starts)


def test_clips_start_on_the_masters_bar_lines_without_gaps_or_clicks(bridge_name: str) -> None:
    _stop_transport()
    with _mastered(_live(bridge_name), 137.0) as (live, master, recorder):
        time.sleep(8.0)
        starts, metrics = live.boundaries(), live.metrics()
        _check_recording(recorder, live)
    per_bar = 44100 * 60 / 137.0 * 4
    assert len(starts) >= 5 and sum(s.new for s in starts) >= 3
    for start in starts:
        assert abs(start.frame - start.into - round(start.bar * per_bar)) < BLOCK, start  # on its bar's grid
    assert metrics.tempo_source == "transport" and metrics.bpm == 137.0


def test_tempo_change_moves_later_boundaries_to_the_new_grid(bridge_name: str) -> None:
    _stop_transport()
    with _mastered(_live(bridge_name, bars=2, bpm=160.0), 160.0) as (live, master, recorder):
        assert wait_until(lambda: master.transport_frame() > 44100, 5)
        change_bar = master.map.bar_at(master.transport_frame()) + 2
        change = master.map.change_at_bar(change_bar, 200.0)
        assert wait_until(lambda: master.transport_frame() > change + 6 * 52920, 20)
        starts, metrics = live.boundaries(), live.metrics()
        _check_recording(recorder, live)
    before = [s for s in starts if s.frame < change]
    after = [s for s in starts if s.frame >= change]
    assert all(abs(s.frame - s.into - s.bar * 66150) < BLOCK for s in before), before
    assert len(after) >= 3
    for start in after:
        assert abs(start.frame - start.into - (change + (start.bar - change_bar) * 52920)) < BLOCK, (start, starts, change)
    assert metrics.bpm == 200.0 and metrics.refits >= 1


def test_midi_clock_at_a_tempo_gives_bars_of_that_length(bridge_name: str) -> None:
    _stop_transport()
    live = _live(bridge_name).start()
    clock = None
    try:
        live.wait_for(lambda m: m.clips_generated >= 1, 60)
        clock = ClockSender(150.0, f"{bridge_name}:midi_in").start()
        live.wait_for(lambda m: m.clips_started >= 1 and m.tempo_source == "midi", 10)
        live.wait_for(lambda m: len(live.boundaries()) >= 5, 30)
        starts, metrics = live.boundaries(), live.metrics()
        current = live.player.current
    finally:
        if clock is not None:
            clock.close()
        live.stop()
    message = live.midi.get(timeout=1.0)
    assert (message.data, message.kind) == (b"\xb0\x4a\x40", "control_change")
    bar_ticks = [round((s.jack_frame - clock.start_frame) / clock.per_tick) for s in starts]
    for start, ticks in zip(starts, bar_ticks):
        assert ticks % 96 == 0 and abs(start.jack_frame - clock.tick_frame(ticks)) < BLOCK
    assert np.allclose(np.diff([s.jack_frame for s in starts]), 70560, atol=1)
    assert metrics.bpm == pytest.approx(150.0, abs=0.05)
    assert current.frames == pytest.approx(70560, abs=60)


def test_timebase_master_option_publishes_our_tempo(bridge_name: str) -> None:
    import jack

    _stop_transport()
    live = _live(bridge_name, bpm=150.0, timebase_master=True).start()
    second = _live(bridge_name + "-2", timebase_master=True)
    try:
        assert live.output.is_master
        second.start()
        assert not second.output.is_master
        live.wait_for(lambda m: m.clips_generated >= 1, 60)
        with jack.Client("rb-peer", no_start_server=True) as peer:
            peer.transport_start()
            live.wait_for(lambda m: len(live.boundaries()) >= 2, 15)
            state, position = peer.transport_query()
            peer.transport_stop()
        starts = live.boundaries()
    finally:
        second.stop()
        live.stop()
    assert position["beats_per_minute"] == 150.0 and position["beats_per_bar"] == 4.0
    assert all(abs(s.frame - s.into - s.bar * 70560) < BLOCK for s in starts)


@pytest.mark.slow
def test_no_overrun_of_ours_in_60_seconds_of_generation(tiny_model_dir: object) -> None:
    """60 s at a 128-frame period (2.9 ms), free-running, the tiny model generating clip after
    clip in its child process, ``jack_metro`` (a C client) in the same graph.

    It fails only on riff-bridge's own overruns: cycles jackd's log says our client had not
    finished (``state = Running``) while our realtime thread was using the CPU
    (:mod:`bridge.live.overruns`). Running while our thread used no more CPU than usual (it was
    stopped mid-callback: host steal, interrupts), ``Triggered`` (it never got the CPU) and the
    driver waking late are the machine's, and are only printed.
    """
    import subprocess
    from functools import partial

    from bridge.engine.diffusion import DiffusionEngine
    from bridge.live.childengine import ChildProcessEngine
    from bridge.live.overruns import watch_core
    from bridge.live.server import JackServer

    store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="organ", prompt_b="organ",
                                    steps=150, denoising=1.0))
    with JackServer(period=128) as server:
        metro = subprocess.Popen(["jack_metro", "-b", "120", "-n", "metro"], env=server.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = ChildProcessEngine(partial(DiffusionEngine, str(tiny_model_dir), device="cpu"),
                                    nice=0, policy="normal")  # busy even on a loaded machine
        output = JackOutput("rb-xruns", servername=server.name)
        try:
            with engine.start(), LiveEngine(store, engine, output, LiveOptions(free_run=True)) as live:
                live.wait_for(lambda m: m.clips_generated >= 1, 300)
                live.core.reset_callback_times()
                with watch_core(live.core, output.client.name, server, 128, server.sample_rate) as watch:
                    time.sleep(60.0)
                    time.sleep(0.1)  # jackd writes an attribution at the next cycle
                metrics, times = live.metrics(), live.core.callback_times()
        finally:
            metro.terminate()
            metro.wait(5)
        causes = server.xrun_causes()
    report = watch.report()
    print(f"\njackd's xrun causes: {causes or 'none'}; {report.summary()}; callback p50 "
          f"{times.percentile(0.5):.0f} us, p99.9 {times.percentile(0.999):.0f} us, max {times.max_us:.0f} us; "
          f"{metrics.summary()}")
    assert report.ours == 0, report
    assert report.ours + report.stalls == causes.get("rb-xruns Running", 0)  # every attribution was seen
    assert report.seconds > 59 and times.blocks > 60 * 44100 / 128 * 0.9  # the callback ran the whole minute
    assert metrics.clips_generated >= 1 and metrics.failures == 0


def test_an_overrun_of_ours_is_told_from_a_stall() -> None:
    """The check above can fail: callbacks made to spin 6 ms (``Core.burn``) at a 2.9 ms period
    are attributed Running by jackd and counted as ours, each in a busy sample."""
    from bridge.live.overruns import watch_core
    from bridge.live.server import JackServer

    store = StateStore(ControlState(bpm=120.0, bars=1))
    with JackServer(period=128) as server:
        output = JackOutput("rb-burn", servername=server.name)
        with LiveEngine(store, FakeEngine(), output, LiveOptions(free_run=True)) as live:
            live.wait_for(lambda m: m.clips_started >= 1, 30)
            with watch_core(live.core, output.client.name, server, 128, server.sample_rate) as watch:
                for _ in range(3):
                    time.sleep(0.3)
                    live.core.burn(6000)
                time.sleep(0.3)
            times = live.core.callback_times()
        causes = server.xrun_causes()
    report = watch.report()
    print(f"\njackd's xrun causes: {causes}; {report.summary()}")
    assert causes.get("rb-burn Running", 0) >= 3, causes
    assert report.ours == causes["rb-burn Running"] and report.stalls == 0
    assert 3 <= report.busy <= 6 and report.max_cpu_us >= 5000  # a burn may straddle two samples
    assert times.max_us >= 6000


#: A realtime program of someone else's: pinned to one CPU at SCHED_FIFO 7 (above JACK's
#: clients at 5, below jackd's driver at 10), it takes that CPU for 6 ms at a time for 2 s.
HOG = """
import os, time
os.sched_setaffinity(0, {%d})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(7))
end = time.monotonic() + 2.0
while time.monotonic() < end:
    spin = time.monotonic() + 0.006
    while time.monotonic() < spin:
        pass
    time.sleep(0.0001)
"""


def test_our_thread_stopped_mid_callback_is_a_stall_not_an_overrun_of_ours() -> None:
    """The check above never fails on the machine's stalls: with our realtime thread pinned
    beside a higher-priority realtime hog, callbacks made to run 700 us are stopped midway for
    6 ms. jackd attributes Running to our client; our thread used little CPU, so the watch puts
    every one of them down to a stall."""
    import os
    import subprocess
    import sys

    from bridge.live.overruns import watch_core
    from bridge.live.server import JackServer

    if os.geteuid() != 0 or (os.cpu_count() or 1) < 2:
        pytest.skip("needs SCHED_FIFO (root) and two CPUs")
    store = StateStore(ControlState(bpm=120.0, bars=1))
    with JackServer(period=128) as server:
        output = JackOutput("rb-stall", servername=server.name)
        with LiveEngine(store, FakeEngine(), output, LiveOptions(free_run=True)) as live:
            live.wait_for(lambda m: m.clips_started >= 1, 30)
            cpu = max(os.sched_getaffinity(0))
            os.sched_setaffinity(~(live.core.realtime_clock() >> 3), {cpu})  # Linux thread clock: ~tid << 3 | 6
            with watch_core(live.core, output.client.name, server, 128, server.sample_rate) as watch:
                hog = subprocess.Popen([sys.executable, "-c", HOG % cpu])
                while hog.poll() is None:
                    live.core.burn(700)
                    time.sleep(0.03)
                time.sleep(0.1)
        causes = server.xrun_causes()
    report = watch.report()
    print(f"\njackd's xrun causes: {causes}; {report.summary()}")
    assert hog.returncode == 0
    assert causes.get("rb-stall Running", 0) >= 3, causes
    assert report.stalls == causes["rb-stall Running"] and report.ours == 0 and report.busy == 0


def test_serve_runs_until_sigterm_and_closes_its_client(jack_server: object) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**jack_server.env(), "PYTHONPATH": os.getcwd()}  # type: ignore[attr-defined]
    command = [sys.executable, "-m", "bridge.cli", "serve", "--model", "fake", "--bpm", "120",
               "--bars", "2", "--jack-name", "rb-serve", "--free-run"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_until(lambda: "rb-serve:out_L" in _ports(env) or process.poll() is not None, 30)
        assert process.poll() is None, process.communicate()[0]
        assert {"rb-serve:out_R", "rb-serve:midi_in"} <= _ports(env)
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped:" in output and "xruns" in output
    assert not any(port.startswith("rb-serve:") for port in _ports(env))


def _ports(env: dict[str, str]) -> set[str]:
    import subprocess

    listing = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10)
    return set(listing.stdout.split())


def test_ports_connections_and_block_size_changes(jack_server: object) -> None:
    """--connect, --midi-from and --audio-in wire the ports; a block size change is followed
    (on a server of its own, so the session server keeps its 256 frames)."""
    import os

    import jack

    from bridge.live.server import JackServer

    with JackServer(period=256) as server:
        previous = os.environ["JACK_DEFAULT_SERVER"]
        os.environ["JACK_DEFAULT_SERVER"] = server.name
        try:
            _check_ports_and_block_sizes(jack)
        finally:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _check_ports_and_block_sizes(jack: object) -> None:
    sink = jack.Client("rb-sink", no_start_server=True)  # type: ignore[attr-defined]
    inputs = [sink.inports.register(f"in_{k}") for k in range(2)]
    midi_out = sink.midi_outports.register("midi_out")
    sink.activate()
    live = _live("rb-ports", free_run=True, audio_in=True, connect=["rb-sink"], midi_from=["rb-sink:midi_out"])
    try:
        live.start()
        client = live.output.client
        assert {p.shortname for p in client.inports} == {"in_L", "in_R"}
        assert [p.name for p in sink.get_all_connections(inputs[0])] == ["rb-ports:out_L"]
        assert [p.name for p in sink.get_all_connections(inputs[1])] == ["rb-ports:out_R"]
        assert [p.name for p in sink.get_all_connections(midi_out)] == ["rb-ports:midi_in"]
        live.wait_for(lambda m: m.clips_started >= 1, 60)
        sink.blocksize = 1024
        live.wait_for(lambda m: m.block_size == 1024 and len(live.boundaries()) >= 3, 20)
        metrics = live.metrics()
    finally:
        live.stop()
        sink.deactivate()
        sink.close()
    starts = live.boundaries()
    assert all(abs(s.frame - starts[0].frame - (s.bar - starts[0].bar) * 88200) <= 1 for s in starts)
    assert metrics.block_size == 1024
