"""``--link``: a :class:`~bridge.live.link.LinkSource` on the live engine's JACK client and core.

:class:`LinkBinding` joins the Link session, reads JACK's clock through whatever client the
output has open now (it is reopened after a JACK server restart), counts the output ports'
playback latency, feeds the grid to the core (``set_external_grid``), and, when riff-bridge
is the tempo master (``--timebase-master``), commits the control tempo (``/riff/set/bpm``)
to the Link session on the next bar line.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from bridge.errors import check_range
from bridge.live.jacktime import CycleTimes, JackClock, JackClockError
from bridge.live.link import GridSink, LinkOptions, LinkSource, open_link
from bridge.state import ControlState, StateStore

log = logging.getLogger(__name__)


class OutputClock:
    """JACK's clock through ``output.client`` (any object with a JACK-Client ``client``),
    following it when the output reopens its client."""

    def __init__(self, output: Any) -> None:
        self.output = output
        self._clock: JackClock | None = None

    def _current(self) -> JackClock:
        client = getattr(self.output, "client", None)
        if client is None or getattr(self.output, "shut_down", False):
            raise JackClockError("the JACK client is closed (or its server went away)")
        if self._clock is None or self._clock.client is not client:
            self._clock = JackClock(client)
        return self._clock

    def now_usecs(self) -> int:
        """``jack_get_time()``."""
        return self._current().now_usecs()

    def cycle(self) -> CycleTimes:
        """The current cycle's times."""
        return self._current().cycle()

    def output_latency(self, extra_ms: float = 0.0) -> int:
        """Largest playback latency (frames) of the client's audio output ports, plus
        ``extra_ms`` (what JACK cannot see: a converter, a speaker's DSP)."""
        clock = self._current()
        extra = round(extra_ms * clock.client.samplerate / 1000.0)
        return clock.playback_latency(list(clock.client.outports)).max + extra


class LinkBinding:
    """What ``serve --link`` runs (module docstring). ``store``: the control state (its
    ``bpm`` starts the session when we are alone); ``output``: has the JACK ``client``;
    ``sink``: the core; ``extra_latency_ms``: output latency JACK does not report (0-1000);
    ``session_factory``: makes the ``link.Link`` (default :func:`open_link`)."""

    def __init__(self, store: StateStore, output: Any, sink: GridSink, options: LinkOptions = LinkOptions(),
                 extra_latency_ms: float = 0.0, session_factory: Callable[[float], Any] = open_link) -> None:
        self.store, self.output, self.sink, self.options = store, output, sink, options
        self.extra_latency_ms = check_range("link-latency-ms", extra_latency_ms, 0.0, 1000.0)
        self.session_factory = session_factory
        self.source: LinkSource | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._bpm = store.snapshot().bpm
        self._rolling: bool | None = None

    def start(self) -> "LinkBinding":
        """Join the session and start feeding the grid."""
        clock = OutputClock(self.output)
        session = self.session_factory(self.store.snapshot().bpm)
        self.source = LinkSource(session, clock, self.sink, self.options,
                                 latency=lambda: clock.output_latency(self.extra_latency_ms))
        self._unsubscribe = self.store.subscribe(self._on_state)
        self.source.start()
        log.info("Link: joined the session (quantum %d, start/stop sync %s, tempo commits %s)",
                 self.options.beats_per_bar, "on" if self.options.start_stop_sync else "off",
                 "on" if self.options.commit_tempo else "off")
        return self

    def stop(self) -> None:
        """Leave the session and remove the grid (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.source is not None:
            self.source.stop()
            self.source = None

    def __enter__(self) -> "LinkBinding":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tick(self) -> None:
        """Called by the owner's loop: with start/stop sync, the JACK transport starts and
        stops with the session's play state (Link's convention; our own rolling state follows
        it through the grid, and a DAW on the same JACK server follows the transport)."""
        grid = self.source.last if self.source is not None else None
        if grid is None or not self.options.start_stop_sync or grid.rolling == self._rolling:
            return
        self._rolling = grid.rolling
        client = getattr(self.output, "client", None)
        if client is not None:
            if grid.rolling:
                client.transport_start()
            else:
                client.transport_stop()
            log.info("Link: session %s, JACK transport follows", "playing" if grid.rolling else "stopped")

    def status(self) -> dict[str, Any]:
        """The source's status (``tempo_source``, ``link_peers``, ...), empty when stopped."""
        return self.source.status() if self.source is not None else {}

    def describe(self) -> str:
        """One line for the status line: ``link 2 peers``."""
        status = self.status()
        return f"link {status.get('link_peers', 0)} peers" if status else "link off"

    def _on_state(self, name: str, value: Any, state: ControlState) -> None:
        """A changed control tempo goes to Link (a preset load repeating it does not)."""
        if name == "bpm" and self.source is not None and float(value) != self._bpm:
            self._bpm = float(value)
            self.source.request_tempo(self._bpm)
