"""Ableton Link as a tempo source: the session's bar grid in JACK frames, for the native core.

:class:`LinkSource` joins a Link session (LinkPython-extern, module ``link``; GPL-2.0-or-later,
the optional extra ``riff-bridge[link]``) and, on its own thread every ``period`` (10 ms),
reads Link's session state and hands the bar grid to the core::

    core.set_external_grid(bar, bar_start_jack_frame, frames_per_bar, beats_per_bar, bpm, rolling)

Conversion (one :meth:`LinkSource.read`):

1. ``offset``: JACK time minus Link time, bracketed (:func:`~bridge.live.jacktime.clock_offset`;
   both are ``CLOCK_MONOTONIC_RAW`` on Linux, so it reads 0 +- 1 us).
2. The JACK cycle (frame counter and wake-up time) and the graph's frame rate against that
   clock over a long baseline (:class:`FrameRate`), so a JACK frame time is known for any
   microsecond: ``frame(t) = cycle.frames + (t + offset - cycle.usecs) * rate``.
3. Output latency ``L`` (frames): the largest playback latency of our output ports. Link's
   timeline says when a beat is *heard*; a sample written on JACK frame ``f`` is heard at
   ``time(f + L)``. So the bar that is being written is the bar at the heard time of the next
   block, and each bar line is moved ``L`` frames earlier.
4. Quantum = beats per bar (the meter): ``bar = floor(beatAtTime(t, q) / q)``, its start is
   ``timeAtBeat(bar * q, q)``, the next bar's ``timeAtBeat((bar + 1) * q, q)``; both to frames
   minus ``L`` give ``bar_start_jack_frame`` and ``frames_per_bar``. Every peer's bar starts
   on the same phase, so our bar lines fall on theirs (phase, not only tempo).

A tempo change by any peer moves the timeline at once, keeping the beat continuous; the grid
sent next carries the new tempo and the start of the current bar on the new timeline, so the
next bar line is where the peers' next bar line is, and the core applies the new bar length
from that line on. With ``commit_tempo`` (``--timebase-master``), :meth:`LinkSource.request_tempo`
commits our tempo to the session on the next bar line (``setTempo(bpm, t_bar)`` a little before
it), so every peer changes tempo there too.

Start/stop sync (Link's optional convention): with ``start_stop_sync``, ``rolling`` follows the
session's play state (``isPlaying`` from ``timeForIsPlaying`` on) and :meth:`LinkSource.set_playing`
starts/stops the session on the next bar line; without it, the grid is always rolling.

Remaining error of the audible bar line against a peer's audible bar line: Link's own clock
sync between peers (2 us measured between two processes on one host; over a network, Link's
sync, not measured here), the offset bracket (~1 us), the JACK DLL's jitter of the cycle's
wake-up time (a few us; more when a dummy driver wakes late under load), the grid's age (at
most ``period``: the drift within it is sub-frame), the core's rounding of a bar line to a
whole frame, and, the one that counts, the output latency JACK reports versus the real one:
``L`` is what the ports declare (the driver's periods plus what the audio interface claims);
a converter or a Bluetooth speaker after it is invisible to JACK (``--link-latency-ms``).
Measured numbers: README, "Live coding: Ableton Link".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from bridge.errors import BridgeError, check_int, check_range
from bridge.live.jacktime import CycleTimes, clock_offset

log = logging.getLogger(__name__)

#: The tempo source name the core reports for the external grid.
SOURCE_LINK = "link"
#: Frame-rate baseline: the estimate uses cycles at least this far apart (seconds) ...
RATE_BASELINE_S = 2.0
#: ... and at most this far apart (a sliding baseline follows a drifting card).
RATE_WINDOW_S = 20.0


class LinkUnavailableError(BridgeError):
    """The Link binding (LinkPython-extern) is not installed."""


def require_link() -> Any:
    """The ``link`` module; LinkUnavailableError naming the extra when it is missing."""
    try:
        import link
    except ImportError:
        raise LinkUnavailableError("--link needs Ableton Link for Python: pip install 'riff-bridge[link]' "
                                   "(LinkPython-extern, GPL-2.0-or-later)") from None
    return link


def open_link(bpm: float, enabled: bool = True) -> Any:
    """A ``link.Link`` at ``bpm`` (joined when ``enabled``); LinkUnavailableError when the
    optional extra is missing."""
    link = require_link()
    session = link.Link(float(check_range("bpm", bpm, 20.0, 999.0)))
    session.enabled = enabled
    return session


class GridSink(Protocol):
    """Who receives the grid: the native core (``bridge.live.core.Core``) or :class:`GridLog`."""

    def set_external_grid(self, bar: int, bar_start_jack_frame: float, frames_per_bar: float,
                          beats_per_bar: int, bpm: float, rolling: bool) -> None: ...

    def clear_external_grid(self) -> None: ...


class FrameClock(Protocol):
    """JACK's clock (:class:`~bridge.live.jacktime.JackClock`)."""

    def now_usecs(self) -> int: ...

    def cycle(self) -> CycleTimes: ...


@dataclass(frozen=True)
class LinkGrid:
    """One reading of the Link session as a bar grid in JACK frames (see the module docstring).

    ``bar_start_jack_frame`` is where bar ``bar`` must be *written* (its heard time minus the
    output latency); bar ``k`` starts at :meth:`bar_line`. ``peers``: other Link peers;
    ``latency_frames``: output latency counted; ``link_micros``: Link time of the reading;
    ``offset_usecs``: JACK time minus Link time.
    """

    bar: int
    bar_start_jack_frame: float
    frames_per_bar: float
    beats_per_bar: int
    bpm: float
    rolling: bool
    peers: int
    latency_frames: int
    link_micros: int
    offset_usecs: float

    def bar_line(self, bar: int) -> float:
        """JACK frame (write time) of bar ``bar`` on this grid."""
        return self.bar_start_jack_frame + (bar - self.bar) * self.frames_per_bar

    def send(self, sink: GridSink) -> None:
        """``sink.set_external_grid(...)`` with this grid."""
        sink.set_external_grid(self.bar, self.bar_start_jack_frame, self.frames_per_bar,
                               self.beats_per_bar, self.bpm, self.rolling)


@dataclass
class GridLog:
    """A :class:`GridSink` that keeps what it was sent (tests, and a log of the last grid)."""

    grids: list[tuple[int, float, float, int, float, bool]] = field(default_factory=list)
    cleared: int = 0
    limit: int = 100000

    def set_external_grid(self, bar: int, bar_start_jack_frame: float, frames_per_bar: float,
                          beats_per_bar: int, bpm: float, rolling: bool) -> None:
        """Remember one grid (the oldest are dropped past ``limit``)."""
        self.grids.append((bar, bar_start_jack_frame, frames_per_bar, beats_per_bar, bpm, rolling))
        del self.grids[: max(0, len(self.grids) - self.limit)]

    def clear_external_grid(self) -> None:
        """Count a removal."""
        self.cleared += 1


class FrameRate:
    """JACK frames per microsecond of JACK time, over a long baseline of cycle readings.

    A cycle's own span (``next_usecs - usecs``) is no measure of the rate: the DLL rounds it to
    whole microseconds (~15 frames a bar at 64 frames), and when the driver wakes late the DLL
    moves the next wake-up by part of the delay, so one span can be several per cent off (a
    grid extrapolated from it missed a bar line by 2.5 ms, 100 ms ahead, on a loaded machine).
    So the rate is the server's nominal one (``sample_rate`` / 1e6) until a baseline exists,
    and then the frames counted between two cycles seconds apart: anchors are kept every
    ``RATE_BASELINE_S`` for ``RATE_WINDOW_S`` (a sliding baseline that follows a drifting card;
    the oldest gives the rate). A baseline rate more than ``MAX_DEVIATION`` from the nominal
    one (a frame counter that jumped: a new server) starts the anchors again on the nominal
    rate. Real converters run within about 100 ppm of nominal.
    """

    #: Largest believable relative difference between the measured and the nominal rate.
    MAX_DEVIATION = 0.005

    def __init__(self) -> None:
        self._anchors: list[CycleTimes] = []

    def update(self, cycle: CycleTimes) -> float:
        """The rate (frames per microsecond) given the newest cycle."""
        nominal = cycle.sample_rate / 1e6
        anchors = self._anchors
        if not anchors or cycle.usecs - anchors[-1].usecs >= RATE_BASELINE_S * 1e6:
            anchors.append(cycle)
        while len(anchors) > 1 and cycle.usecs - anchors[1].usecs >= RATE_WINDOW_S * 1e6:
            anchors.pop(0)
        elapsed = cycle.usecs - anchors[0].usecs
        if elapsed < RATE_BASELINE_S * 1e6:
            return nominal
        rate = ((cycle.frames - anchors[0].frames) % 2**32) / elapsed
        if abs(rate / nominal - 1.0) > self.MAX_DEVIATION:  # the counter jumped: start again
            self._anchors = [cycle]
            return nominal
        return rate


@dataclass(frozen=True)
class LinkOptions:
    """``beats_per_bar``: the meter, Link's quantum. ``start_stop_sync``: rolling follows the
    session's play state. ``commit_tempo``: :meth:`LinkSource.request_tempo` changes the
    session's tempo (``--timebase-master``). ``period``: seconds between readings.
    ``latency_every``: seconds between output latency readings."""

    beats_per_bar: int = 4
    start_stop_sync: bool = False
    commit_tempo: bool = False
    period: float = 0.01
    latency_every: float = 0.5

    def __post_init__(self) -> None:
        check_int("beats_per_bar", self.beats_per_bar, 1, 32)
        check_range("period", self.period, 0.001, 0.1)
        check_range("latency_every", self.latency_every, 0.0, 60.0)


class LinkSource:
    """Feeds Link's bar grid to ``sink`` every ``options.period`` (module docstring).

    ``session``: a ``link.Link`` (:func:`open_link`); ``clock``: JACK's clock; ``latency``:
    output latency in frames (called every ``options.latency_every``). Thread-safe:
    :meth:`request_tempo`, :meth:`set_playing` and :meth:`status` may be called from any thread.
    """

    def __init__(self, session: Any, clock: FrameClock, sink: GridSink, options: LinkOptions = LinkOptions(),
                 latency: Callable[[], int] = lambda: 0) -> None:
        self.session, self.clock, self.sink, self.options = session, clock, sink, options
        self.latency = latency
        self.rate = FrameRate()
        self.last: LinkGrid | None = None
        self.errors = 0
        self._latency_frames, self._latency_read = 0, -math.inf
        self._pending_tempo: float | None = None
        self._pending_play: bool | None = None
        self._target_beat: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "LinkSource":
        """Start the reading thread (the session was joined by :func:`open_link`)."""
        if self.options.start_stop_sync:
            self.session.startStopSyncEnabled = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="riff-link", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, remove the grid from the sink and leave the Link session."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        try:
            self.sink.clear_external_grid()
        finally:
            self.session.enabled = False

    def __enter__(self) -> "LinkSource":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests from other threads --------------------------------------------------------

    def request_tempo(self, bpm: float) -> bool:
        """Commit ``bpm`` to the session on the next bar line (only with ``commit_tempo``).
        Returns whether it will be committed."""
        check_range("bpm", bpm, 20.0, 999.0)
        if not self.options.commit_tempo:
            return False
        with self._lock:
            self._pending_tempo = float(bpm)
        return True

    def set_playing(self, playing: bool) -> None:
        """Start or stop the session's play state on the next bar line (start/stop sync)."""
        with self._lock:
            self._pending_play = bool(playing)

    def status(self) -> dict[str, Any]:
        """``tempo_source`` (``link``), ``link_peers``, ``link_bpm``, ``link_playing``,
        ``link_latency_frames``: for status lines and ``/riff/get/status``."""
        grid = self.last
        return {"tempo_source": SOURCE_LINK, "link_peers": int(self.session.numPeers()),
                "link_bpm": grid.bpm if grid else 0.0, "link_playing": bool(grid.rolling) if grid else False,
                "link_latency_frames": grid.latency_frames if grid else 0}

    # -- one reading ------------------------------------------------------------------------

    def step(self) -> LinkGrid:
        """Commit what is due, read the session and send the grid."""
        self._commit_due()
        grid = self.read()
        grid.send(self.sink)
        self.last = grid
        return grid

    def read(self) -> LinkGrid:
        """The session's bar grid now (module docstring, steps 1-4)."""
        session, quantum = self.session, float(self.options.beats_per_bar)
        offset, _ = clock_offset(self.clock.now_usecs, session.clock().micros)
        cycle = self.clock.cycle()
        rate = self.rate.update(cycle)
        latency = self._output_latency()
        heard = cycle.usecs + (cycle.block + latency) / rate - offset  # Link time heard of the next block
        state = session.captureAppSessionState()
        bar = math.floor(state.beatAtTime(int(heard), quantum) / quantum)
        start = state.timeAtBeat(bar * quantum, quantum)
        end = state.timeAtBeat((bar + 1) * quantum, quantum)
        first = cycle.frames + (start + offset - cycle.usecs) * rate - latency
        return LinkGrid(bar, first, (end - start) * rate, self.options.beats_per_bar, state.tempo(),
                        self._rolling(state, heard), int(session.numPeers()), latency,
                        int(session.clock().micros()), offset)

    def _rolling(self, state: Any, heard: float) -> bool:
        if not self.options.start_stop_sync:
            return True
        return bool(state.isPlaying()) and heard >= state.timeForIsPlaying()

    def _output_latency(self) -> int:
        now = time.monotonic()
        if now - self._latency_read >= self.options.latency_every:
            self._latency_read = now
            self._latency_frames = max(0, int(self.latency()))
        return self._latency_frames

    def _commit_due(self) -> None:
        """Commit a pending tempo or play state at the bar line that was next when it was
        requested, once that line is less than two periods away (or passed by less than two
        periods: a late thread); a line missed by more moves the commit to the next one."""
        with self._lock:
            tempo, play = self._pending_tempo, self._pending_play
        if tempo is None and play is None:
            return
        session, quantum = self.session, float(self.options.beats_per_bar)
        now = session.clock().micros()
        state = session.captureAppSessionState()
        if self._target_beat is None:
            self._target_beat = (math.floor(state.beatAtTime(now, quantum) / quantum) + 1) * quantum
        line, window = state.timeAtBeat(self._target_beat, quantum), 2 * self.options.period * 1e6
        if now < line - window:
            return
        if now > line + window:
            self._target_beat = None  # missed: the next bar line
            return
        with self._lock:
            self._pending_tempo = self._pending_play = None
        self._target_beat = None
        if tempo is not None:
            state.setTempo(tempo, int(line))
        if play is not None:
            state.setIsPlaying(play, int(line))
        session.commitAppSessionState(state)
        log.info("Link: committed%s%s at the bar line", f" {tempo:.2f} BPM" if tempo else "",
                 f" {'start' if play else 'stop'}" if play is not None else "")

    def _run(self) -> None:
        while not self._stop.wait(self.options.period):
            try:
                self.step()
            except Exception as err:  # the JACK server may vanish; keep trying
                self.errors += 1
                if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                    log.warning("Link reading failed (%d times): %s", self.errors, err)


__all__ = ["FrameRate", "GridLog", "GridSink", "LinkGrid", "LinkOptions", "LinkSource",
           "LinkUnavailableError", "SOURCE_LINK", "open_link", "require_link"]
