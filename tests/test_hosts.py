"""Following real hosts: Debian's own JACK programs drive riff-bridge (issue: tempo and meter
changes, MIDI clock, locate and start).

- ``klick -T`` is the timebase master, with a tempo map that changes tempo twice and meter
  three times (4/4 -> 7/8 -> 3/4 -> 4/4), then ends while the transport keeps rolling;
- ``jack_midi_clock`` sends MIDI clock from the transport's frames;
- a recorder client captures our outputs on JACK frame time.

Every loop start the core logged is found again in the recording by matching the loop's
own audio, so each check is on what was heard, not only on what the core says it did.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from bridge.engine.fake import FakeEngine
from bridge.live.engine import LiveEngine, LiveOptions
from bridge.live.jackoutput import JackOutput
from bridge.live.server import JackServer, selected
from bridge.state import ControlState, StateStore
from live_fixtures import LoopBook, Recorder, longest_silence, wait_until

pytestmark = [pytest.mark.jack, pytest.mark.slow]

RATE, BLOCK = 44100, 256
#: klick's tempo map: bars, meter, tempo in quarter notes per minute (klick's convention).
KLICK_MAP = [(4, 4, 4, 120.0), (3, 7, 8, 180.0), (3, 3, 4, 100.0), (4, 4, 4, 140.0)]


def klick_bar_lines(extra_bars: int = 0) -> list[float]:
    """Transport frame of every bar line of KLICK_MAP (its BPM counts the meter's unit)."""
    lines, frame = [], 0.0
    for bars, beats, unit, quarter_bpm in KLICK_MAP:
        per_bar = beats * 60.0 / (quarter_bpm * unit / 4) * RATE
        for _ in range(bars):
            lines.append(frame)
            frame += per_bar
    lines += [frame + k * per_bar for k in range(extra_bars + 1)]
    return lines


@pytest.fixture()
def server() -> Iterator[JackServer]:
    """A private jackd for one test, its environment in place."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed")
    with JackServer(period=BLOCK) as jackd, selected(jackd):
        yield jackd


def _program(server: JackServer, *command: str) -> subprocess.Popen[bytes]:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (scripts/setup.sh installs it)")
    return subprocess.Popen(list(command), env=server.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def heard_start(audio: np.ndarray, first: int, loop: Any, jack_frame: int, fade: int, offset: int = 0) -> int | None:
    """JACK frame where ``loop`` (from its frame ``offset``) starts in the recording near
    ``jack_frame``, found by matching 1024 frames of its audio after the crossfade; None when absent."""
    skip = fade + 64
    ref = loop.audio[0, offset + skip:offset + skip + 1024]
    best, where = 0.0, None
    for shift in range(-300, 301):
        at = jack_frame + shift + skip - first
        if at < 0 or at + 1024 > len(audio):
            continue
        got = audio[at:at + 1024, 0]
        score = float(np.dot(got, ref) / (np.linalg.norm(got) * np.linalg.norm(ref) + 1e-12))
        if score > best:
            best, where = score, jack_frame + shift
    return where if best > 0.999 else None


def _live(name: str, bars: int, bpm: float = 120.0) -> LiveEngine:
    store = StateStore(ControlState(bpm=bpm, bars=bars, prompt_a="organ", prompt_b="organ", steps=5))
    return LiveEngine(store, FakeEngine(iterations=8), JackOutput(name), LiveOptions(prime_seconds=30.0))


def _transport(action: str, frame: int = 0) -> None:
    import jack

    with jack.Client("rb-transport", no_start_server=True) as client:
        if action == "start":
            client.transport_start()
        elif action == "stop":
            client.transport_stop()
        else:
            client.transport_frame = frame


def _check_starts_heard(starts: list[Any], book: LoopBook, recorder: Recorder, fade: int) -> list[Any]:
    """Each start is heard where the core logged it; returns the starts the recording covers
    (a Python recorder can miss a block on a busy machine: each gap-free run is checked)."""
    inside = []
    for audio, first in recorder.runs_jack(BLOCK):
        for start in starts:
            if first <= start.jack_frame and start.jack_frame + 4096 < first + len(audio):
                loop = book.loops[(start.serial, start.version)]
                assert heard_start(audio, first, loop, start.jack_frame, fade, start.offset) == start.jack_frame, start
                inside.append(start)
    return inside


def test_klick_tempo_map_with_meter_changes_keeps_every_clip_on_its_bar_line(server: JackServer) -> None:
    map_file = Path(server.env().get("TMPDIR", "/tmp")) / f"{server.name}-klick.map"
    map_file.write_text("".join(f"{b} {n}/{u} {t:g}\n" for b, n, u, t in KLICK_MAP))
    live = _live("rb-klick", bars=1).start()
    book = LoopBook(live)
    klick = _program(server, "klick", "-T", "-f", str(map_file), "-n", "klick")
    recorder = None
    try:
        time.sleep(1.5)  # klick registers and takes the timebase
        recorder = Recorder(["rb-klick:out_L", "rb-klick:out_R"], 40.0).start()
        _transport("start")
        end = klick_bar_lines()[-1] + 3 * 75600  # three held bars after the map ends
        assert wait_until(lambda: live.core.struct.position.frame > end, 45)
        starts, metrics = list(live.boundaries()), live.metrics()
        inside = _check_starts_heard(starts, book, recorder, live.core.crossfade.frames)
        audio, _ = recorder.take_jack(BLOCK)
    finally:
        klick.terminate()
        if recorder is not None:
            recorder.close()
        live.stop()
    lines = klick_bar_lines(extra_bars=3)
    for start in starts:
        # on its bar line, within 2 frames; a restart inside a bar (after an xrun moved the
        # transport) resumes at the matching offset, up to the one cycle by which JACK's BBT may
        # lag a jump of the transport
        tolerance = 2 if start.into == 0 else BLOCK + 12
        assert abs(start.frame - start.into - lines[start.bar]) <= tolerance, (start, lines[start.bar])
    assert sum(start.into > 0 for start in starts) <= metrics.xruns
    assert len(starts) >= 16 and len(inside) >= 2 * len(starts) // 3, (len(inside), len(starts))
    assert longest_silence(audio[1000:]) == 0
    assert metrics.tempo_source == "transport" and metrics.meter == "4/4" and metrics.quarter_bpm == 140.0
    assert metrics.refits >= 3


def test_jack_midi_clock_drives_the_grid(server: JackServer) -> None:
    bpm = 133.0
    live = _live("rb-mclk", bars=1, bpm=bpm).start()
    book = LoopBook(live)
    clock = _program(server, "jack_midi_clock", "-b", f"{bpm:g}", "rb-mclk:midi_in")
    recorder = None
    try:
        recorder = Recorder(["rb-mclk:out_L", "rb-mclk:out_R"], 30.0).start()
        time.sleep(0.5)
        _transport("start")
        assert wait_until(lambda: len(live.boundaries()) >= 8, 30)
        starts, metrics = list(live.boundaries()), live.metrics()
        inside = _check_starts_heard(starts, book, recorder, live.core.crossfade.frames)
    finally:
        clock.terminate()
        if recorder is not None:
            recorder.close()
        _transport("stop")
        live.stop()
    per_bar = 4 * 60 / bpm * RATE
    first = starts[0]
    assert len(starts) >= 8 and len(inside) >= 2 * len(starts) // 3, (len(inside), len(starts))
    for start in starts:
        ideal = first.jack_frame + (start.bar - first.bar) * per_bar
        assert abs(start.jack_frame - ideal) <= BLOCK, (start, ideal)
    assert metrics.tempo_source == "midi" and abs(metrics.quarter_bpm - bpm) < 0.3


def test_start_and_locate_inside_a_bar_are_heard_at_once_at_the_right_offset(server: JackServer) -> None:
    live = _live("rb-locate", bars=2, bpm=100.0)
    live.output.timebase_master = True  # type: ignore[attr-defined]
    live.start()
    book = LoopBook(live)
    recorder = None
    per_bar = 4 * 60 / 100.0 * RATE
    try:
        recorder = Recorder(["rb-locate:out_L", "rb-locate:out_R"], 20.0, always=True).start()
        _transport("locate", round(3.5 * per_bar))
        time.sleep(0.2)
        _transport("start")
        assert wait_until(lambda: len(live.boundaries()) >= 1, 5)
        time.sleep(2.0)
        _transport("locate", round(6.25 * per_bar))
        # the start after the locate (a bar-line start before it may come first on a busy machine)
        assert wait_until(lambda: any(s.frame >= round(6.25 * per_bar) for s in live.boundaries()), 10)
        starts = list(live.boundaries())
        inside = _check_starts_heard(starts, book, recorder, live.core.crossfade.frames)
    finally:
        if recorder is not None:
            recorder.close()
        _transport("stop")
        live.stop()
    assert inside, "no located start was covered by the recording"  # each covered one was heard
    for bars in (3.5, 6.25):
        expected = round(bars * per_bar)
        # heard within 50 ms of the locate (the core logs the first block it played)
        start = next(s for s in starts if s.into > 0 and 0 <= s.frame - expected < 0.05 * RATE)
        # offset into its bar: exact up to BBT ticks (12 frames) and, right after a locate, the
        # one cycle by which JACK's BBT may lag the new frame (the next bar line is exact again)
        assert abs(start.into - (start.frame - int(bars) * per_bar)) <= BLOCK + 12, start


def test_sigterm_during_model_warm_up_exits_within_two_seconds(server: JackServer) -> None:
    """A slow warm-up (the tiny model at many steps) is abandoned at once on SIGTERM."""
    import os
    import signal
    import sys

    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**server.env(), "PYTHONPATH": os.getcwd(), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "bridge.cli", "serve", "--model", "tiny", "--steps", "150",
               "--bars", "16", "--jack-name", "rb-warm", "--osc-port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "warming up the model" in line:
                break
        time.sleep(1.0)
        assert process.poll() is None, "".join(lines)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + (process.stdout.read() if process.stdout else "")
    assert process.returncode == 0, output
    assert took < 2.0, f"SIGTERM took {took:.1f} s during warm-up"
    assert "serving" not in output.split("warm")[-1] and "while starting" in output, output
