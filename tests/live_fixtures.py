"""Helpers and fixtures for the live engine tests: synthetic loops, audio checks, and JACK
peer clients (a timebase master with a tempo map, a recorder, a MIDI clock sender).

The peers are deliberately independent of ``bridge.live``: they compute BBT, bar frames and
clock ticks their own way, so the tests check the bridge against an outside reference.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pytest

from bridge.capture import longest_silence  # noqa: F401 - re-exported for the tests
from bridge.engine.clip import Clip
from bridge.live.loop import SLACK_FRAMES, Loop, LoopTempo

RATE = 44100


# -- synthetic material ---------------------------------------------------------------------

def private_server(sample_rate: int = RATE, period: int = 256) -> Iterator[Any]:
    """A private jackd (dummy backend), selected for this process and its children while the
    generator is suspended; skips the test when jackd cannot start. For fixtures."""
    from bridge.live.server import JackServer, JackServerError, selected

    server = JackServer(sample_rate=sample_rate, period=period)
    try:
        server.start()
    except JackServerError as err:
        pytest.skip(str(err))
    try:
        with selected(server):
            yield server
    finally:
        server.stop()


def tone_clip(frames: int, freq: float = 220.0, rate: int = RATE, phase: float = 0.0) -> Clip:
    """A stereo clip of a slowly beating two-tone chord (never digital silence)."""
    t = np.arange(frames) / rate
    mono = 0.4 * np.sin(2 * np.pi * freq * t + phase) + 0.3 * np.sin(2 * np.pi * freq * 1.5 * t + 2 * phase)
    audio = np.stack([mono, mono * 0.9], axis=1).astype(np.float32)
    return Clip(audio, rate, np.ones((1, 512, 8), np.float32))


def tone_loop(serial: int, bpm: float = 120.0, bars: int = 1, freq: float = 220.0, crossfade: int = 220,
              rate: int = RATE) -> Loop:
    """A :class:`Loop` of ``bars`` bars at ``bpm`` made of :func:`tone_clip`."""
    frames = round(bars * 4 * 60 * rate / bpm)
    return Loop.from_clip(tone_clip(frames, freq, rate, phase=serial), bars, LoopTempo(bpm, 4, rate),
                          serial, crossfade + SLACK_FRAMES)


def max_jump(audio: np.ndarray) -> float:
    """Largest sample-to-sample step of ``(frames, channels)`` audio."""
    return float(np.abs(np.diff(audio, axis=0)).max()) if len(audio) > 1 else 0.0


def joint_and_inside_jumps(audio: np.ndarray, joints: Sequence[int], width: int = 300) -> tuple[float, float]:
    """(largest step within ``width`` frames after any joint, largest step elsewhere)."""
    mask = np.zeros(len(audio), bool)
    for joint in joints:
        mask[max(0, joint - 2):joint + width] = True
    steps = np.abs(np.diff(audio, axis=0)).max(axis=1)
    at_joints = steps[mask[1:]]
    inside = steps[~mask[1:]]
    return (float(at_joints.max()) if at_joints.size else 0.0, float(inside.max()) if inside.size else 0.0)


class RecordingEngine:
    """Wraps an engine and remembers every request it was asked for."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.codec = getattr(engine, "codec", None)
        self.requests: list[Any] = []

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: Any = None) -> Clip:
        """Record, then delegate."""
        self.requests.append(request)
        return self.engine.generate(request, num_samples, sample_rate, cancel)


class NanEngine:
    """An engine whose clips are all NaN (a broken model)."""

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: Any = None) -> Clip:
        """NaN audio of the right shape."""
        return Clip(np.full((num_samples, 2), np.nan, np.float32), sample_rate, np.ones((1, 512, 8), np.float32))


# -- JACK peers -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TempoSegment:
    """From ``frame`` on (which starts bar ``bar``, 0-based) the tempo is ``bpm``."""

    frame: float
    bar: int
    bpm: float


class TempoMap:
    """A master's tempo map in 4/4: bars and beats from frames, changes on bar lines."""

    def __init__(self, bpm: float, rate: int = RATE, beats_per_bar: int = 4) -> None:
        self.rate, self.beats_per_bar = rate, beats_per_bar
        self.segments = [TempoSegment(0.0, 0, bpm)]

    def bar_frames(self, bpm: float) -> float:
        """Frames per bar at ``bpm``."""
        return self.rate * 60.0 / bpm * self.beats_per_bar

    def segment(self, frame: float) -> TempoSegment:
        """The segment in force at ``frame``."""
        return [s for s in self.segments if s.frame <= frame][-1] if frame >= 0 else self.segments[0]

    def change_at_bar(self, bar: int, bpm: float) -> float:
        """Tempo ``bpm`` from bar ``bar`` on; returns that bar's first frame."""
        frame = self.bar_start(bar)
        self.segments = [s for s in self.segments if s.bar < bar] + [TempoSegment(frame, bar, bpm)]
        return frame

    def bar_start(self, bar: int) -> float:
        """Exact (fractional) first frame of ``bar``."""
        seg = [s for s in self.segments if s.bar <= bar][-1]
        return seg.frame + (bar - seg.bar) * self.bar_frames(seg.bpm)

    def bar_at(self, frame: float) -> int:
        """Bar containing ``frame``."""
        seg = self.segment(frame)
        return seg.bar + int((frame - seg.frame) // self.bar_frames(seg.bpm))


class TimebaseMaster:
    """A JACK client that is timebase master with a :class:`TempoMap` and rolls the transport."""

    def __init__(self, bpm: float, name: str = "test-master") -> None:
        import jack

        self.jack = jack
        self.client = jack.Client(name, no_start_server=True)
        self.map = TempoMap(bpm, self.client.samplerate)
        self.lock = threading.Lock()

    def start(self) -> "TimebaseMaster":
        """Take the timebase (unconditionally), activate, locate to 0 and roll."""
        self.client.set_timebase_callback(self._timebase, conditional=False)
        self.client.activate()
        self.client.transport_frame = 0
        self.client.transport_start()
        return self

    def _timebase(self, state: int, blocksize: int, pos: Any, new_pos: bool) -> None:
        frame = pos.frame
        seg = self.map.segment(frame)
        beat_frames = self.map.rate * 60.0 / seg.bpm
        beats = (frame - seg.frame) / beat_frames
        bars, beat_in_bar = divmod(beats, self.map.beats_per_bar)
        pos.bar = seg.bar + int(bars) + 1
        pos.beat = int(beat_in_bar) + 1
        pos.tick = int((beat_in_bar - int(beat_in_bar)) * 1920)
        pos.bar_start_tick = 0.0
        pos.beats_per_bar, pos.beat_type, pos.ticks_per_beat = float(self.map.beats_per_bar), 4.0, 1920.0
        pos.beats_per_minute = seg.bpm
        pos.valid = self.jack.POSITION_BBT

    def transport_frame(self) -> int:
        """Current transport frame."""
        return int(self.client.transport_frame)

    def close(self) -> None:
        """Stop the transport, give up the timebase, close."""
        self.client.transport_stop()
        try:
            self.client.release_timebase()
        except Exception:
            pass
        self.client.deactivate()
        self.client.close()


class Recorder:
    """A JACK client recording two audio inputs block by block, stamped with JACK frame time,
    into preallocated memory (while the transport rolls, or ``always``)."""

    def __init__(self, sources: Sequence[str], seconds: float, name: str = "test-recorder",
                 always: bool = False) -> None:
        """``always``: record while the transport is stopped too (for checks on JACK frame time)."""
        import jack

        self.always = always
        self.client = jack.Client(name, no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{k}") for k in range(2)]
        self.capacity = int(seconds * self.client.samplerate)
        self.audio = np.zeros((self.capacity, 2), np.float32)
        self.block_frames = np.full(self.capacity // 16 + 1, -1, np.int64)
        self.block_jack = np.full(self.capacity // 16 + 1, -1, np.int64)
        self.blocks = 0
        self.sources = list(sources)
        self.rolling_blocks = 0
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        state, pos = self.client.transport_query_struct()
        at = self.blocks * frames
        if (state != 1 and not self.always) or at + frames > self.capacity:
            return
        self.block_frames[self.blocks] = pos.frame
        self.block_jack[self.blocks] = self.client.last_frame_time
        self.audio[at:at + frames, 0] = self.ports[0].get_array()
        self.audio[at:at + frames, 1] = self.ports[1].get_array()
        self.blocks += 1

    def start(self) -> "Recorder":
        """Activate and connect to the sources."""
        self.client.activate()
        for source, port in zip(self.sources, self.ports):
            self.client.connect(source, port)
        return self

    def take(self, block: int) -> tuple[np.ndarray, int]:
        """Like :meth:`take_jack`, on transport frames. Only for a transport that cannot stand
        still (riff-bridge its own timebase master): a block the transport repeats is split off."""
        return self._longest(self.runs(block))

    def take_jack(self, block: int) -> tuple[np.ndarray, int]:
        """(audio of the longest run of blocks contiguous in JACK frames, JACK frame of its first
        sample). A block missed on a busy machine (an xrun) splits the recording into runs."""
        return self._longest(self.runs_jack(block))

    def runs(self, block: int) -> list[tuple[np.ndarray, int]]:
        """Like :meth:`runs_jack`, on transport frames (see :meth:`take`)."""
        return self._runs(self.block_frames, block)

    def runs_jack(self, block: int) -> list[tuple[np.ndarray, int]]:
        """Every gap-free run of the recording on JACK frame time: (audio, first JACK frame)."""
        return self._runs(self.block_jack, block)

    def spans(self, block: int) -> list[tuple[int, int]]:
        """(first transport frame, frames) of every gap-free run so far, without copying audio
        (safe while recording: only blocks already written are read)."""
        return [(first, (hi - lo) * block) for lo, hi, first in self._block_runs(self.block_frames, block)]

    def _longest(self, runs: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
        return max(runs, key=lambda run: len(run[0])) if runs else (self.audio[:0].copy(), 0)

    def _runs(self, stamps: np.ndarray, block: int) -> list[tuple[np.ndarray, int]]:
        return [(self.audio[lo * block:hi * block].copy(), first) for lo, hi, first in self._block_runs(stamps, block)]

    def _block_runs(self, stamps: np.ndarray, block: int) -> list[tuple[int, int, int]]:
        """(first block, end block, first frame) of each run of the blocks written so far whose
        ``stamps`` step by exactly ``block``."""
        count = self.blocks
        frames = stamps[:count]
        breaks = np.flatnonzero(np.diff(frames) != block) + 1
        bounds = np.concatenate(([0], breaks, [count])).astype(int)
        return [(int(lo), int(hi), int(frames[lo])) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]

    def close(self) -> None:
        """Deactivate and close."""
        self.client.deactivate()
        self.client.close()


class ClockSender:
    """A JACK client sending MIDI clock (Start, then 24 ticks per quarter at ``bpm``) on frame
    times, and one control change (B0 4A 40) with the second tick."""

    def __init__(self, bpm: float, destination: str, name: str = "test-clock") -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.port = self.client.midi_outports.register("out")
        self.per_tick = self.client.samplerate * 60.0 / bpm / 24
        self.destination = destination
        self.start_frame = -1
        self.ticks = 0
        self.connected = False  # nothing is sent before the connection is made (it would be lost)
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        self.port.clear_buffer()
        if not self.connected:
            return
        now = self.client.last_frame_time
        if self.start_frame < 0:
            self.start_frame = now + frames + 100
        while True:
            due = self.start_frame + round(self.ticks * self.per_tick)
            if due >= now + frames:
                return
            if self.ticks == 0:
                self.port.write_midi_event(max(0, due - now), b"\xfa")
            self.port.write_midi_event(max(0, due - now), b"\xf8")
            if self.ticks == 1:  # one control change, for the control layer
                self.port.write_midi_event(max(0, due - now), b"\xb0\x4a\x40")
            self.ticks += 1

    def tick_frame(self, tick: int) -> int:
        """JACK frame of clock tick ``tick`` (0: the first, right after Start)."""
        return self.start_frame + round(tick * self.per_tick)

    def start(self) -> "ClockSender":
        """Activate, connect to the destination, then start sending (Start, the clock, the CC)."""
        self.client.activate()
        self.client.connect(self.port, self.destination)
        self.connected = True
        return self

    def close(self) -> None:
        """Deactivate and close."""
        self.client.deactivate()
        self.client.close()


class LoopBook:
    """Every loop offered to a live engine's core, by (serial, version): what a start must sound
    like, and the request it was made from."""

    def __init__(self, live: Any) -> None:
        self.loops: dict[tuple[int, int], Any] = {
            (loop.serial, loop.version): loop for loop in list(live.core._loops.values())}  # offered so far
        send = live.core.send

        def recording_send(kind: str, loop: Any = None, **values: Any) -> None:
            if loop is not None:
                self.loops[(loop.serial, loop.version)] = loop
            send(kind, loop, **values)

        live.core.send = recording_send  # type: ignore[method-assign]


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; returns its last value."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class FailingEngine:
    """An engine whose every clip raises RuntimeError("model exploded")."""

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: Any = None) -> Clip:
        """Always fails."""
        raise RuntimeError("model exploded")
