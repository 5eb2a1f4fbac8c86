"""A timer thread that runs actions at wall-clock times (for OSC bundles with future timetags).

The OSC receive thread never sleeps on a timetag: it hands the bundle's messages to
:class:`Scheduler` and goes back to reading the socket.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable

from bridge.errors import ParameterError

log = logging.getLogger(__name__)

Action = Callable[[], None]


class Scheduler:
    """Runs actions at ``time.time()`` instants on one daemon thread, in time order.

    ``schedule`` is thread-safe and raises ParameterError when the queue holds
    ``max_pending`` actions or ``when`` lies more than ``max_ahead`` seconds in the future.
    An action that raises is logged; the thread keeps running. ``stop`` drops what is pending.
    """

    def __init__(self, max_pending: int = 10000, max_ahead: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_pending = max_pending
        self.max_ahead = max_ahead
        self.clock = clock
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        """Start the timer thread (idempotent)."""
        with self._wake:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name="riff-osc-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and drop pending actions."""
        with self._wake:
            self._running = False
            self._heap.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def pending(self) -> int:
        """Number of actions waiting."""
        with self._wake:
            return len(self._heap)

    def schedule(self, when: float, action: Action) -> None:
        """Run ``action`` at ``when`` (seconds since the epoch); validates the queue and horizon."""
        ahead = when - self.clock()
        if ahead > self.max_ahead:
            raise ParameterError("timetag", f"at most {self.max_ahead:g} s ahead", f"{ahead:.1f} s ahead")
        with self._wake:
            if len(self._heap) >= self.max_pending:
                raise ParameterError("timetag", f"at most {self.max_pending} scheduled bundles",
                                     "one more")
            heapq.heappush(self._heap, (when, next(self._order), action))
            self._wake.notify()

    def _next_due(self) -> Action | None:
        """Wait for the earliest action to fall due; None when stopping."""
        with self._wake:
            while self._running:
                if not self._heap:
                    self._wake.wait()
                    continue
                delay = self._heap[0][0] - self.clock()
                if delay <= 0:
                    return heapq.heappop(self._heap)[2]
                self._wake.wait(delay)
            return None

    def _loop(self) -> None:
        while (action := self._next_due()) is not None:
            try:
                action()
            except Exception:  # noqa: BLE001 - one bad action must not stop the timer
                log.exception("scheduled OSC action failed")
