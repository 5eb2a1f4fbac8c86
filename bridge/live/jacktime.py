"""JACK's microsecond clock, frame times and port latency: the libjack calls JACK-Client lacks.

JACK-Client (0.5.7) wraps neither ``jack_get_time`` nor ``jack_get_cycle_times`` nor
``jack_port_get_latency_range``. :class:`JackClock` calls them through a small cffi ABI-mode
binding of ``libjack.so.0`` on the ``jack_client_t*`` JACK-Client opened (its ``_ptr``).

Clocks on Linux (measured, see ``tests/test_link.py``): jackd2's ``jack_get_time`` and Ableton
Link's ``Clock.micros()`` both read ``CLOCK_MONOTONIC_RAW`` (not ``CLOCK_MONOTONIC``: that one
is slewed by NTP and differed by a quarter of a second on this machine), so a Link host time is
a JACK time. :func:`clock_offset` measures the offset anyway, so another build of either side
costs one bracketed reading instead of a wrong grid.

Frame times: JACK's delay-locked loop gives, per cycle, the frame counter and the wake-up times
of this cycle and the next; :meth:`JackClock.frame_at` interpolates between them in floating
point (``jack_time_to_frames`` does the same and rounds to whole frames). JACK frame counters
are 32-bit and wrap after 27 hours at 44.1 kHz; results here are not wrapped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from bridge.errors import BridgeError

_CDEF = """
typedef uint64_t jack_time_t;
typedef uint32_t jack_nframes_t;
typedef struct { jack_nframes_t min; jack_nframes_t max; } jack_latency_range_t;
jack_time_t jack_get_time(void);
jack_nframes_t jack_time_to_frames(void *client, jack_time_t usecs);
jack_time_t jack_frames_to_time(void *client, jack_nframes_t frames);
int jack_get_cycle_times(void *client, jack_nframes_t *current_frames, jack_time_t *current_usecs,
                         jack_time_t *next_usecs, float *period_usecs);
void jack_port_get_latency_range(void *port, int mode, jack_latency_range_t *range);
"""
#: ``JackPlaybackLatency`` of libjack's ``jack_latency_callback_mode_t``.
PLAYBACK_LATENCY = 1

_binding: tuple[Any, Any] | None = None
_binding_lock = threading.Lock()


class JackClockError(BridgeError):
    """libjack could not be loaded, or the client has no cycle times yet (not active)."""


def _libjack() -> tuple[Any, Any]:
    """``(ffi, lib)`` of the ABI-mode binding (loaded once)."""
    global _binding
    with _binding_lock:
        if _binding is None:
            import cffi

            ffi = cffi.FFI()
            ffi.cdef(_CDEF)
            try:
                _binding = (ffi, ffi.dlopen("libjack.so.0"))
            except OSError as err:
                raise JackClockError(f"cannot load libjack.so.0: {err} (install libjack-jackd2-0)") from None
        return _binding


@dataclass(frozen=True)
class CycleTimes:
    """One JACK cycle as the delay-locked loop sees it: ``frames`` (frame counter at its start),
    ``usecs`` and ``next_usecs`` (JACK times of its start and of the next cycle's), ``block``,
    and the server's nominal ``sample_rate`` (frames per second)."""

    frames: int
    usecs: int
    next_usecs: int
    block: int
    sample_rate: int

    def frame_at(self, usecs: float) -> float:
        """The (fractional, unwrapped) JACK frame time of JACK time ``usecs``."""
        span = self.next_usecs - self.usecs
        return self.frames + (usecs - self.usecs) * self.block / span

    def usecs_at(self, frame: float) -> float:
        """The JACK time (microseconds) of frame time ``frame``."""
        return self.usecs + (frame - self.frames) * (self.next_usecs - self.usecs) / self.block


@dataclass(frozen=True)
class LatencyRange:
    """A port's latency range in frames (``jack_port_get_latency_range``)."""

    min: int
    max: int


class JackClock:
    """JACK's clock for an open, active JACK-Client ``client`` (see the module docstring).

    Safe to share between threads: each call gets result buffers of its own (libjack writes
    them with the GIL released, so shared buffers could mix two threads' readings)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ffi, self._lib = _libjack()

    def now_usecs(self) -> int:
        """``jack_get_time()``: JACK's current time in microseconds."""
        return int(self._lib.jack_get_time())

    def cycle(self) -> CycleTimes:
        """The current cycle's times (``jack_get_cycle_times``); raises JackClockError when the
        client is not active or the server has not run a cycle yet.

        When jackd has just reset its delay-locked loop (``ResetFrameTime``, on an xrun) the
        cycle's start is the late wake-up and the next wake-up is still the old prediction, so
        it can lie at or before the start until the next cycle; the next wake-up is then taken
        as one nominal period after the start."""
        new = self._ffi.new
        frames, usecs, next_usecs, period = (new("jack_nframes_t *"), new("jack_time_t *"),
                                             new("jack_time_t *"), new("float *"))
        if self._lib.jack_get_cycle_times(self._pointer(self.client), frames, usecs, next_usecs, period) != 0:
            raise JackClockError("jack_get_cycle_times failed: the JACK client is not active")
        start, block, rate = int(usecs[0]), int(self.client.blocksize), int(self.client.samplerate)
        if start <= 0:
            raise JackClockError("jack_get_cycle_times: no cycle has run yet")
        following = int(next_usecs[0])
        if following <= start:
            following = start + round(block * 1e6 / rate)
        return CycleTimes(int(frames[0]), start, following, block, rate)

    def frame_at(self, usecs: float) -> float:
        """Fractional JACK frame time of JACK time ``usecs`` (see :meth:`CycleTimes.frame_at`)."""
        return self.cycle().frame_at(usecs)

    def time_to_frames(self, usecs: int) -> int:
        """libjack's own ``jack_time_to_frames`` (whole frames, wrapped to 32 bits)."""
        return int(self._lib.jack_time_to_frames(self._pointer(self.client), int(usecs)))

    def frames_to_time(self, frame: int) -> int:
        """libjack's own ``jack_frames_to_time`` (whole microseconds)."""
        return int(self._lib.jack_frames_to_time(self._pointer(self.client), int(frame) % 2**32))

    def playback_latency(self, ports: Iterable[Any]) -> LatencyRange:
        """Playback latency range of ``ports`` (JACK-Client port objects): the smallest minimum
        and the largest maximum. A port connected nowhere has (0, 0).

        jackd2 propagates latency only to clients that set a latency callback, which
        JACK-Client cannot; so each output port's range is also taken from the ports it feeds,
        as libjack's default latency handler would (``RecalculateLatency``: the extremes over
        the connected ports)."""
        ranges = []
        for port in ports:
            ranges.append(self._range_of(port))
            ranges.extend(self._range_of(peer) for peer in self.client.get_all_connections(port))
        ranges = [r for r in ranges if r.max > 0] or [LatencyRange(0, 0)]
        return LatencyRange(min(r.min for r in ranges), max(r.max for r in ranges))

    def _range_of(self, port: Any) -> LatencyRange:
        latency = self._ffi.new("jack_latency_range_t *")
        self._lib.jack_port_get_latency_range(self._pointer(port), PLAYBACK_LATENCY, latency)
        return LatencyRange(int(latency.min), int(latency.max))

    def _pointer(self, owner: Any) -> Any:
        """Our ``void *`` for the ``_ptr`` of a JACK-Client object (another cffi instance)."""
        import jack

        return self._ffi.cast("void *", int(jack._ffi.cast("uintptr_t", owner._ptr)))


def clock_offset(reference: Callable[[], int], other: Callable[[], int], tries: int = 5) -> tuple[float, float]:
    """``(offset, uncertainty)`` in microseconds such that ``reference() ~ other() + offset``.

    Each try brackets one ``other()`` reading between two ``reference()`` readings; the try
    with the narrowest bracket wins and its half-width is the uncertainty.
    """
    best: tuple[float, float] | None = None
    for _ in range(tries):
        before = reference()
        middle = other()
        after = reference()
        candidate = ((before + after) / 2.0 - middle, (after - before) / 2.0)
        if best is None or candidate[1] < best[1]:
            best = candidate
    assert best is not None
    return best


def monotonic_raw_usecs() -> int:
    """``CLOCK_MONOTONIC_RAW`` in microseconds (the clock jackd2 and Link use on Linux)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW) // 1000
