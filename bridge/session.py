"""The whole bridge as one process: control surfaces, generation, JACK playback, recording.

:class:`Session` is the composition root that ``riff-bridge serve`` and the demo run:

  1. the control state (StateStore) from the command line, config file and ``--preset``;
  2. the engine, warmed up by one generation before any JACK client exists;
  3. the control surfaces (OSC, MIDI, presets), then the live engine (JACK client), whose
     first clip is ready before it plays;
  4. :meth:`Session.tick` (called by the owner's loop, about every 50 ms): bar ticks to the
     control surfaces, newly played clips to the recorder, generation failures to
     ``/riff/error``, JACK connections remembered, and a reconnect when the server went away;
  5. :meth:`Session.stop`: everything closed in reverse order, within about a second; presets
     and MIDI maps are written atomically when they change, so nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from bridge.control.namespace import GENERATION_ERROR
from bridge.recording import ClipRecorder
from bridge.state import StateStore

log = logging.getLogger("riff-bridge.session")


@dataclass
class SessionParts:
    """What a session runs; built by :func:`build_parts` (serve) or by hand (tests, demo)."""

    store: StateStore
    engine: Any
    output: Any
    live_options: Any
    surfaces: Any = None
    recorder: ClipRecorder | None = None
    warm_up: bool = True
    #: With --audio-in: the InputRecorder the live engine feeds (bridge.live.inputloop).
    input_recorder: Any = None


@dataclass
class SessionReport:
    """Counters the session itself keeps (the live engine keeps the rest)."""

    reconnects: int = 0
    recorded: int = 0
    errors_reported: int = 0
    warm_up_seconds: float = 0.0
    events: list[str] = field(default_factory=list)


class Session:
    """Runs :class:`SessionParts` (see the module docstring). Not thread-safe: one owner thread
    calls ``start``, ``tick`` and ``stop``."""

    def __init__(self, parts: SessionParts) -> None:
        self.parts = parts
        self.report = SessionReport()
        self.live: Any = None
        self.last_metrics: Any = None
        self._errors: "queue.SimpleQueue[BaseException]" = queue.SimpleQueue()
        self._last_bar = -1
        self._last_serial = -1
        self._skipped = 0
        self._connections: dict[str, tuple[str, ...]] = {}
        self._next_connection_scan = 0.0
        #: Called with (image, info) when a new clip begins playing (the web live view listens).
        self.clip_listeners: list[Any] = []
        #: More status providers (e.g. Link: ``link_peers``); the live metrics win on shared keys.
        self.status_extras: list[Any] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "Session":
        """Warm up, start the control surfaces, then the live engine."""
        from bridge.live.engine import LiveEngine

        parts = self.parts
        if parts.warm_up:
            self._warm_up()
        if parts.surfaces is not None:
            parts.surfaces.start()
        on_midi = (lambda m: parts.surfaces.feed_midi(m.data)) if parts.surfaces is not None else None
        inputs = {"input_recorder": parts.input_recorder} if parts.input_recorder is not None else {}
        self.live = LiveEngine(parts.store, parts.engine, parts.output, parts.live_options,
                               on_midi=on_midi, on_error=self._errors.put, **inputs)
        self.live.start()
        if parts.input_recorder is not None:
            parts.input_recorder.use_rate(parts.output.sample_rate)
        return self

    def stop(self) -> None:
        """Stop the live engine, the control surfaces and the recorder (idempotent)."""
        if self.live is not None:
            self.last_metrics = self.live.metrics()
            self.live.stop()
            self.live = None
        if self.parts.surfaces is not None:
            self.parts.surfaces.detach_clock()
            self.parts.surfaces.stop()
        if self.parts.recorder is not None:
            self.parts.recorder.close()
        if hasattr(self.parts.engine, "close"):
            self.parts.engine.close()

    def __enter__(self) -> "Session":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the owner's loop -----------------------------------------------------------------

    def tick(self) -> Any:
        """One round of housekeeping; returns the live metrics snapshot."""
        metrics = self.last_metrics = self.live.metrics()
        self._forward_bar(metrics)
        self._record_new_clip(metrics)
        self._report_errors()
        self._report_input()
        self._watch_connections()
        if getattr(self.parts.output, "shut_down", False):
            self._reconnect()
        return metrics

    def status(self) -> dict[str, Any]:
        """Live metrics and session counters as one dict (for ``/riff/get/status``)."""
        metrics = self.live.metrics() if self.live is not None else self.last_metrics
        values: dict[str, Any] = {}
        for extra in self.status_extras:
            values.update(extra())
        values.update(metrics.as_dict() if metrics is not None else {})
        values.update(reconnects=self.report.reconnects, recorded=self.report.recorded)
        values.update(self.input_status())
        return values

    def input_status(self) -> dict[str, Any]:
        """The input side for ``/riff/get/status``: level, state, latency in loops and why."""
        selector = getattr(self.live, "inputs", None)
        if selector is None:
            return {"input_level_db": -120.0, "input_state": "off", "input_latency_loops": -1,
                    "input_detail": "no audio input (serve --audio-in)"}
        status = selector.status()
        return {"input_level_db": selector.level_db(), "input_state": status.state,
                "input_latency_loops": status.latency_loops, "input_detail": status.detail}

    def _report_input(self) -> None:
        """A silent input loop was skipped: say so to recent OSC peers (once per loop)."""
        selector = getattr(self.live, "inputs", None)
        if selector is None:
            return
        status = selector.status()
        if status.skipped > self._skipped:
            self._skipped = status.skipped
            log.info("input: %s", status.detail)
            if self.parts.surfaces is not None:
                self.parts.surfaces.broadcast("/riff/input/skipped",
                                              [float(status.loop_db), float(selector.threshold_db), status.detail])

    def _warm_up(self) -> None:
        """One generation at the starting state, so weights and caches are hot before JACK."""
        from bridge.engine.request import GenerationRequest

        state = self.parts.store.snapshot()
        request = GenerationRequest.from_state(state, state.bpm)
        log.info("warming up the model: one %d-bar clip", state.bars)
        began = time.perf_counter()
        self.parts.engine.generate(request, request.num_samples(44100), 44100)
        self.report.warm_up_seconds = time.perf_counter() - began
        log.info("model warm-up: one %d-bar clip in %.2f s", state.bars, self.report.warm_up_seconds)

    def _forward_bar(self, metrics: Any) -> None:
        if self.parts.surfaces is None or not metrics.rolling or metrics.current_bar == self._last_bar:
            return
        self._last_bar = metrics.current_bar
        self.parts.surfaces.notify_bar(metrics.current_bar)

    def _record_new_clip(self, metrics: Any) -> None:
        recorder = self.parts.recorder
        if (recorder is None and not self.clip_listeners) or metrics.playing_serial in (-1, self._last_serial):
            return
        self._last_serial = metrics.playing_serial
        loop = self.live.player.current
        if loop is None or loop.serial != metrics.playing_serial:
            return
        image, info = getattr(loop.clip, "image", None), _clip_info(loop, metrics)
        if recorder is not None:
            recorder.record(loop.audio[:, : loop.frames], loop.tempo.sample_rate, image, info)
            self.report.recorded += 1
        for listener in self.clip_listeners:
            listener(image, info)

    def _report_errors(self) -> None:
        while True:
            try:
                error = self._errors.get_nowait()
            except queue.Empty:
                return
            self.report.errors_reported += 1
            text = f"generation failed ({type(error).__name__}: {error}); the current loop keeps playing, retrying"
            if self.parts.surfaces is not None:
                self.parts.surfaces.report_error(GENERATION_ERROR, text)
            else:
                log.warning("%s", text)

    # -- JACK connections and reconnects --------------------------------------------------

    def _watch_connections(self) -> None:
        """Remember who our ports are connected to (once a second), to restore after a restart."""
        now = time.monotonic()
        client = getattr(self.parts.output, "client", None)
        if client is None or now < self._next_connection_scan or self.parts.output.shut_down:
            return
        self._next_connection_scan = now + 1.0
        try:
            self._connections = {port.shortname: tuple(p.name for p in client.get_all_connections(port))
                                 for port in client.get_ports(f"{client.name}:")}
        except Exception as err:  # the server may vanish between two calls
            log.debug("connection scan: %s", err)

    def _reconnect(self) -> None:
        """The JACK server went away: reopen our client when it is back, restore connections."""
        output = self.parts.output
        log.warning("JACK server gone; waiting for it to come back")
        self.report.events.append("jack server lost")
        if not output.reopen(self.live.core, self.live.tempo().tempo):
            return
        self._restore_connections()
        self.report.reconnects += 1
        self.report.events.append("jack client reconnected")
        log.info("JACK client %r reconnected, ports and connections restored", output.name)

    def _restore_connections(self) -> None:
        client = self.parts.output.client
        for short, peers in self._connections.items():
            ours = f"{client.name}:{short}"
            for peer in peers:
                try:
                    source, target = (ours, peer) if short.startswith("out") else (peer, ours)
                    client.connect(source, target)
                except Exception as err:  # already connected, or the peer is not back yet
                    log.debug("reconnect %s -> %s: %s", ours, peer, err)


def _clip_info(loop: Any, metrics: Any) -> dict[str, Any]:
    """Metadata saved with a recorded clip: tempo, meter, bars, bar it started on, request."""
    request = loop.request
    info = {"bpm": loop.tempo.bpm, "beats_per_bar": loop.tempo.beats_per_bar, "bars": loop.bars,
            "sample_rate": loop.tempo.sample_rate, "serial": loop.serial, "bar": metrics.current_bar}
    for name in ("prompt_a", "prompt_b", "seed_a", "seed_b", "alpha", "negative", "denoising",
                 "guidance", "steps", "seed_image", "mask"):
        if hasattr(request, name):
            info[name] = getattr(request, name)
    return info
