"""Our own overruns told from the machine's stalls, by our callback's time and our realtime
thread's CPU time.

jackd's log says a client "was not finished, state = Running" when that client's thread had
woken for a cycle but not finished it by the next one. Its callback may have run too long (an
overrun of ours), but the thread may also have been stopped in the middle of a short callback:
the host took the virtual CPU (steal), or interrupts or a higher-priority thread ran. Measured
on a 2-core VM, a callback of 3 us once took 3059 us of wall time, and jackd said Running.

An overrun of ours needs two things at once, and the watch samples both every ``interval``
seconds beside jackd's log:

- a *long callback*: one that took half a JACK period or more of wall time (the core's own
  histogram; a Running attribution without one was in libjack or the kernel, not our code);
- our *thread on the CPU*: Linux's per-thread CPU clock counts only the time the thread ran
  (host steal is left out where the kernel accounts it), and the sample (with the one
  before: a callback may span two) shows half a period of it beyond :data:`DUTY` of their
  length. A long callback without it was stopped midway.

A sample with both is *busy*. A Running attribution to our client is *ours* when the sample
it was read in, or one next to it, was busy; otherwise it is the machine's (a *stall*).
Without jackd's log (a server we did not start) busy samples are still counted: an overrun
of ours shows as one whether or not jackd writes a line. Interrupt time the kernel charges
to our thread while a callback runs (it is not accounted apart on every kernel) counts
against us: the watch errs towards blaming riff-bridge.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from bridge.live.core import Core
    from bridge.live.server import JackServer

#: Share of a sample's length our realtime thread may use without it counting as busy.
DUTY = 0.02
#: Seconds between samples.
INTERVAL = 0.02


@dataclass(frozen=True)
class Sample:
    """One sample: its length, our realtime thread's CPU time in it, the Running attributions
    to our client that jackd's log gained in it, and our callbacks in it that took half a
    period or more of wall time."""

    seconds: float
    cpu_ns: int
    running: int
    long: int = 0


@dataclass(frozen=True)
class OverrunReport:
    """What :func:`classify` found. ``ours``: Running attributions with our thread busy;
    ``stalls``: Running attributions while our thread used its usual CPU (the machine's);
    ``busy``: busy samples; ``max_cpu_us``: the most CPU our thread used in one sample."""

    ours: int
    stalls: int
    busy: int
    max_cpu_us: float
    samples: int
    seconds: float

    def summary(self) -> str:
        """One line for logs and test output."""
        return (f"overruns of ours: {self.ours} (busy samples {self.busy}); Running put down to stalls: "
                f"{self.stalls}; most realtime-thread CPU in one {INTERVAL * 1000:.0f} ms sample: "
                f"{self.max_cpu_us:.0f} us; {self.samples} samples over {self.seconds:.0f} s")


def is_busy(sample: Sample, period_s: float, before: Sample | None = None) -> bool:
    """True when ``sample`` had a long callback and our thread ran for half a period beyond its
    usual duty in it, or in it and ``before`` together (a callback is counted in the sample it
    ended in, and its CPU time may have begun in the one before)."""
    seconds, cpu_ns = sample.seconds, sample.cpu_ns
    if before is not None:
        seconds, cpu_ns = seconds + before.seconds, cpu_ns + before.cpu_ns
    return sample.long > 0 and cpu_ns >= (period_s / 2 + DUTY * seconds) * 1e9


def classify(samples: Sequence[Sample], period_s: float) -> OverrunReport:
    """Split the Running attributions in ``samples`` (in order) into ours and stalls: ours
    when a busy sample is next to the one it was read in (jackd writes the line a period into
    the overrun, before the callback ends and is counted)."""
    busy = [is_busy(sample, period_s, samples[k - 1] if k else None) for k, sample in enumerate(samples)]
    ours = stalls = 0
    for index, sample in enumerate(samples):
        if sample.running:
            if any(busy[max(0, index - 1):index + 2]):
                ours += sample.running
            else:
                stalls += sample.running
    return OverrunReport(ours, stalls, sum(busy), max((s.cpu_ns for s in samples), default=0) / 1000,
                         len(samples), sum(s.seconds for s in samples))


class OverrunWatch:
    """Samples ``cpu_ns`` (our realtime thread's CPU clock, from
    :meth:`bridge.live.core.Core.realtime_clock`), ``long`` (how many callbacks so far took
    half a period or more, from :meth:`bridge.live.core.Core.long_callbacks`) and ``running``
    (how many Running attributions to our client jackd's log holds so far; None without a
    log) on a thread of its own, from :meth:`start` to :meth:`stop`; :meth:`report`
    classifies what it saw."""

    def __init__(self, cpu_ns: Callable[[], int], long: Callable[[], int], running: Callable[[], int] | None,
                 period_s: float, interval: float = INTERVAL) -> None:
        self.cpu_ns, self.long, self.running = cpu_ns, long, running
        self.period_s, self.interval = period_s, interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "OverrunWatch":
        """Begin sampling."""
        self._thread = threading.Thread(target=self._run, name="overrun-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> OverrunReport:
        """End sampling (one last sample is taken) and :meth:`report`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.report()

    def report(self) -> OverrunReport:
        """The classification of the samples taken so far."""
        return classify(list(self.samples), self.period_s)

    def _count(self) -> int:
        return self.running() if self.running is not None else 0

    def _run(self) -> None:
        then, cpu, running, long = time.monotonic(), self.cpu_ns(), self._count(), self.long()
        while True:
            stopping = self._stop.wait(self.interval)
            now, cpu_now, running_now, long_now = time.monotonic(), self.cpu_ns(), self._count(), self.long()
            self.samples.append(Sample(now - then, cpu_now - cpu, running_now - running, max(0, long_now - long)))
            then, cpu, running, long = now, cpu_now, running_now, long_now
            if stopping:
                return

    def __enter__(self) -> "OverrunWatch":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def watch_core(core: "Core", client: str, server: "JackServer | None", period_frames: int,
               sample_rate: int) -> OverrunWatch:
    """An :class:`OverrunWatch` over ``core``'s active JACK client named ``client`` (do not
    :meth:`~bridge.live.core.Core.reset_callback_times` while it runs), reading
    ``server``'s log when we started that server (None: CPU time only). CoreError when the
    client's realtime thread has no CPU clock (not active yet)."""
    from bridge.live.core import CoreError

    clock = core.realtime_clock()
    if clock is None:
        raise CoreError("the JACK client's realtime thread has no CPU clock (is the client active?)")
    running = (lambda: server.xrun_causes().get(f"{client} Running", 0)) if server is not None else None
    half_period_us = int(period_frames / sample_rate / 2 * 1e6)
    return OverrunWatch(lambda: time.clock_gettime_ns(clock), lambda: core.long_callbacks(half_period_us),
                        running, period_frames / sample_rate)
