"""Host stalls, measured apart from the tests, and one retry of a JACK test that failed in one.

A shared virtual machine sometimes stops running this guest for a while (the hypervisor's
steal time), or stalls it. Every JACK client, jackd's own driver included, then misses its
cycles: xruns, recorders that miss blocks, a transport that jumps. Such a failure says
nothing about riff-bridge. So a small process of its own, outside every test, measures it:

- it sleeps 2 ms at a time under SCHED_FIFO (when allowed), so nothing of ours at normal
  priority delays it, and logs each second's worst oversleep;
- and the share of the machine's CPU time stolen by the host in that second (``/proc/stat``).

A second with an oversleep of :data:`OVERSLEEP_MS` or more, or :data:`STEAL_PERCENT` or more
stolen, is a stall. A test marked ``jack`` that fails while a stall overlapped it is run
again, and the report says so, up to :data:`ATTEMPTS` runs (the last run's result stands);
one that fails without a stall fails. Each retry waits until the host has run
:data:`CALM_SECONDS` without a stall (at most :data:`CALM_WAIT_SECONDS`): stalls come in
spells of several seconds, and a retry started inside the same spell only repeats the first
failure. Module fixtures that run a whole scenario use :func:`stall_retried` (two runs at
most: they take minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest
from _pytest.runner import runtestprotocol

#: An oversleep of a 2 ms sleep under SCHED_FIFO this long is a stall: seven 256-frame periods
#: (a quiet 2-core VM here shows up to 20 ms a few times a minute, which the tests absorb).
OVERSLEEP_MS = 40.0
#: This share of all CPUs' time stolen by the host within one second is a stall (a quiet VM
#: here loses up to 9 %).
STEAL_PERCENT = 20.0
#: A retry waits for this many seconds in a row without a stall...
CALM_SECONDS = 5.0
#: ...but no longer than this.
CALM_WAIT_SECONDS = 120.0
#: Runs of a ``jack`` test at most: a retry inside another stall says no more than the first run.
ATTEMPTS = 3

_CHILD = r"""
import os, sys, time
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
except (OSError, AttributeError):
    pass
hz, cpus = os.sysconf("SC_CLK_TCK"), os.cpu_count() or 1
def steal():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) if len(fields) > 8 else 0
out = open(sys.argv[1], "a", buffering=1)
last_steal, last, worst = steal(), time.monotonic(), 0.0
while True:
    before = time.monotonic()
    time.sleep(0.002)
    worst = max(worst, time.monotonic() - before - 0.002)
    if before - last >= 1.0:
        now = steal()
        share = 100.0 * (now - last_steal) / (hz * cpus * (before - last))
        out.write(f"{time.time():.3f} {worst * 1000:.1f} {share:.1f}\n")
        last_steal, last, worst = now, before, 0.0
"""

T = TypeVar("T")


class StallWatch:
    """The watching process and what it logged (module docstring)."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="rb-stalls-", suffix=".log")
        os.close(handle)
        self.path = Path(name)
        self._child = subprocess.Popen([sys.executable, "-c", _CHILD, str(self.path)])

    def stalls(self, start: float, end: float) -> list[str]:
        """The stalled seconds logged between wall times ``start`` and ``end`` (one second of
        margin each side), each as words."""
        found = []
        for at, oversleep, steal in self._seconds():
            if start - 1.0 <= at <= end + 1.0 and _stalled(oversleep, steal):
                found.append(f"{time.strftime('%H:%M:%S', time.localtime(at))}: a realtime thread "
                             f"{oversleep:.0f} ms late, {steal:.0f} % of the CPUs stolen by the host")
        return found

    def wait_calm(self, seconds: float = CALM_SECONDS, limit: float = CALM_WAIT_SECONDS) -> float:
        """Wait until the last ``seconds`` were logged without a stall, or ``limit`` seconds
        passed; returns the seconds waited."""
        began = time.time()
        while time.time() - began < limit:
            recent = [row for row in self._seconds() if row[0] >= time.time() - seconds]
            if len(recent) >= seconds - 1 and not any(_stalled(late, steal) for _, late, steal in recent):
                break
            time.sleep(0.5)
        return time.time() - began

    def summary(self) -> str:
        """One line: seconds watched, the worst of each measure, stalled seconds."""
        rows = self._seconds()
        if not rows:
            return "host stall watch: nothing logged"
        stalled = sum(1 for _, late, steal in rows if _stalled(late, steal))
        return (f"host stall watch: {len(rows)} s watched, worst realtime lateness {max(r[1] for r in rows):.0f} ms, "
                f"worst steal {max(r[2] for r in rows):.0f} %, {stalled} s stalled "
                f"(>= {OVERSLEEP_MS:g} ms or >= {STEAL_PERCENT:g} %)")

    def _seconds(self) -> list[tuple[float, float, float]]:
        """Each logged second: (wall time, lateness in ms, steal in %); a line cut short by a
        write in progress is left out."""
        rows = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                at, late, steal = (float(p) for p in parts)
                rows.append((at, late, steal))
        return rows

    def close(self) -> None:
        self._child.kill()
        self._child.wait()
        self.path.unlink(missing_ok=True)


def _stalled(late_ms: float, steal_percent: float) -> bool:
    return late_ms >= OVERSLEEP_MS or steal_percent >= STEAL_PERCENT


_WATCH: StallWatch | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _WATCH
    _WATCH = StallWatch()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _WATCH is not None:
        terminalreporter.write_line(_WATCH.summary())


def pytest_unconfigure(config: pytest.Config) -> None:
    if _WATCH is not None:
        _WATCH.close()


def stall_retried(run: Callable[[], T], what: str, attempts: int = 2) -> T:
    """``run()``, again (up to ``attempts`` runs in all) while the host stalled in the run
    before, whatever its result (for module fixtures that run a whole timed scenario: a test's
    retry would reuse their result; two runs by default, as these scenarios take minutes)."""
    for attempt in range(1, attempts + 1):
        started = time.time()
        result = run()
        stalls = _WATCH.stalls(started, time.time()) if _WATCH is not None else []
        if not stalls or attempt == attempts or _WATCH is None:
            break
        waited = _WATCH.wait_calm()
        print(f"\n{what}: the host stalled in run {attempt} ({'; '.join(stalls[:3])}): run again "
              f"after {waited:.0f} s of waiting for a calm host", file=sys.stderr)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Tests marked ``jack``: again (up to :data:`ATTEMPTS` runs in all) while they fail in
    runs that the host stalled in."""
    if item.get_closest_marker("jack") is None or _WATCH is None:
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(1, ATTEMPTS + 1):
        started = time.time()
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        stalls = _WATCH.stalls(started, time.time())
        if attempt == ATTEMPTS or not (any(r.failed for r in reports) and stalls):
            break
        waited = _WATCH.wait_calm()
        note = (f"run {attempt} failed while the host stalled ({'; '.join(stalls[:3])}): run again after "
                f"{waited:.0f} s of waiting for a calm host")
        item.add_report_section("call", f"host stall {attempt}", note + "\n" + "\n".join(stalls))
        print(f"\n{item.nodeid}: {note}", file=sys.stderr)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
