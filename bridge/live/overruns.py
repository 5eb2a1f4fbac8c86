"""Our own overruns told from the machine's stalls, by the CPU time our realtime thread used.

jackd's log says a client "was not finished, state = Running" when that client's thread had
woken for a cycle but not finished it by the next one. Its callback may have run too long (an
overrun of ours), but the thread may also have been stopped in the middle of a short callback:
the host took the virtual CPU (steal), or interrupts or a higher-priority thread ran. Measured
on a 2-core VM, a callback of 3 us once took 3059 us of wall time, and jackd said Running.

What tells the two apart is CPU time. Linux's per-thread CPU clock counts only the time the
thread itself ran (with paravirtual steal accounting, time the host took is left out). The
watch samples our realtime thread's clock and jackd's log every ``interval`` seconds:

- a sample is *busy* when our thread ran for at least half a JACK period in it, beyond
  :data:`DUTY` of its length (a callback normally takes a few microseconds a period);
- a Running attribution to our client is *ours* when the sample it was read in, or the one
  before, was busy; otherwise it is the machine's (a *stall*).

Without jackd's log (a server we did not start) busy samples are still counted: an overrun
of ours shows as one whether or not jackd writes a line.
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
    """One sample: its length, our realtime thread's CPU time in it, and the Running
    attributions to our client that jackd's log gained in it."""

    seconds: float
    cpu_ns: int
    running: int


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


def is_busy(sample: Sample, period_s: float) -> bool:
    """True when ``sample`` shows our thread running for half a period beyond its usual duty."""
    return sample.cpu_ns >= (period_s / 2 + DUTY * sample.seconds) * 1e9


def classify(samples: Sequence[Sample], period_s: float) -> OverrunReport:
    """Split the Running attributions in ``samples`` (in order) into ours and stalls."""
    busy = [is_busy(sample, period_s) for sample in samples]
    ours = stalls = 0
    for index, sample in enumerate(samples):
        if sample.running:
            if busy[index] or (index > 0 and busy[index - 1]):
                ours += sample.running
            else:
                stalls += sample.running
    return OverrunReport(ours, stalls, sum(busy), max((s.cpu_ns for s in samples), default=0) / 1000,
                         len(samples), sum(s.seconds for s in samples))


class OverrunWatch:
    """Samples ``cpu_ns`` (our realtime thread's CPU clock, from
    :meth:`bridge.live.core.Core.realtime_clock`) and ``running`` (how many Running
    attributions to our client jackd's log holds so far; None without a log) on a thread of
    its own, from :meth:`start` to :meth:`stop`; :meth:`report` classifies what it saw."""

    def __init__(self, cpu_ns: Callable[[], int], running: Callable[[], int] | None, period_s: float,
                 interval: float = INTERVAL) -> None:
        self.cpu_ns, self.running, self.period_s, self.interval = cpu_ns, running, period_s, interval
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
        then, cpu, running = time.monotonic(), self.cpu_ns(), self._count()
        while True:
            stopping = self._stop.wait(self.interval)
            now, cpu_now, running_now = time.monotonic(), self.cpu_ns(), self._count()
            self.samples.append(Sample(now - then, cpu_now - cpu, running_now - running))
            then, cpu, running = now, cpu_now, running_now
            if stopping:
                return

    def __enter__(self) -> "OverrunWatch":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def watch_core(core: "Core", client: str, server: "JackServer | None", period_frames: int,
               sample_rate: int) -> OverrunWatch:
    """An :class:`OverrunWatch` over ``core``'s active JACK client named ``client``, reading
    ``server``'s log when we started that server (None: CPU time only). CoreError when the
    client's realtime thread has no CPU clock (not active yet)."""
    from bridge.live.core import CoreError

    clock = core.realtime_clock()
    if clock is None:
        raise CoreError("the JACK client's realtime thread has no CPU clock (is the client active?)")
    running = (lambda: server.xrun_causes().get(f"{client} Running", 0)) if server is not None else None
    return OverrunWatch(lambda: time.clock_gettime_ns(clock), running, period_frames / sample_rate)
