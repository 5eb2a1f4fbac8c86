"""The live view's fan-out: state changes, live metrics, clips and errors to every open page.

Threads: anything may call :meth:`LiveHub.publish` (state listeners run on the thread that
changed the state, clips arrive from the session's thread, log records from anywhere); the
message is handed to the server's event loop with ``call_soon_threadsafe`` and queued per
client. A slow client loses its oldest messages, never blocks the others or the caller.
OSCQuery listeners get parameter changes as binary OSC messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any, Callable, Mapping

from bridge.control.actions import Actions
from bridge.control.packet import encode_message
from bridge.state import PARAMETERS, ControlState
from bridge.web.oscquery import PARAMETER_PREFIX, osc_value
from bridge.web.thumbnail import thumbnail

log = logging.getLogger(__name__)

StatusProvider = Callable[[], Mapping[str, Any]]
#: Messages queued per page before the oldest are dropped.
CLIENT_QUEUE = 512
#: Clips and errors a newly opened page gets.
RECENT_CLIPS = 24
RECENT_ERRORS = 50
#: Live metrics are read this often (seconds).
METRICS_PERIOD = 0.1
LIVE_KEYS = ("bpm", "tempo_source", "current_bar", "bar_in_loop", "rolling", "clips_generated",
             "clips_started", "generation_seconds_last", "generation_seconds_mean", "real_time_factor",
             "late_clips", "xruns", "failures", "playing_serial", "reconnects", "meter", "beats_per_bar")


class Client:
    """One connected page or OSCQuery client: a bounded outgoing queue and what it listens to."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        self.listening: set[str] = set()
        self.dropped = 0

    def put(self, item: str | bytes | None) -> None:
        """Queue ``item``, dropping the oldest when full."""
        while self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


class LiveHub:
    """Publishes to clients (see the module docstring). ``status`` returns LiveMetrics-style
    keys (``bpm``, ``current_bar``...); ``beats_per_bar`` is used to estimate the beat."""

    def __init__(self, actions: Actions, status: StatusProvider | None = None, beats_per_bar: int = 4) -> None:
        self.actions = actions
        self.store = actions.store
        self.status = status
        self.beats_per_bar = beats_per_bar
        self.clients: set[Client] = set()
        self.clips: deque[dict[str, Any]] = deque(maxlen=RECENT_CLIPS)
        self.errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.live: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._bar_seen = (-1, 0.0)
        self._ticked: tuple[int, int, float] | None = None
        self._bank = None

    # -- lifecycle (the server calls these on its loop) -----------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start publishing into ``loop``; subscribes to the state store."""
        self._loop = loop
        self._bank = self.actions.bank
        self._unsubscribe = self.store.subscribe(self._on_change)

    def detach(self) -> None:
        """Stop publishing; pages are told to close."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in list(self.clients):
            client.put(None)
        self._loop = None

    # -- from any thread ------------------------------------------------------------------

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every page (any thread; dropped when the server is not running)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._fanout, message)
        except RuntimeError:  # loop closed while we were called
            pass

    def add_clip(self, image: Any, info: Mapping[str, Any]) -> None:
        """A clip began playing (the session calls this): its spectrogram goes to every page."""
        fields = {k: info[k] for k in ("serial", "bar", "bars", "bpm", "prompt_a", "prompt_b", "alpha",
                                       "seed_a", "seed_b") if k in info}
        self.publish({"type": "clip", "time": time.time(), "png": thumbnail(image), **fields})

    def notify_beat(self, bar: int, beat: int) -> None:
        """A beat from a clock that knows beats (``riff-bridge control --tick``)."""
        self._ticked = (int(bar), int(beat), time.monotonic())

    # -- on the loop ----------------------------------------------------------------------

    def _fanout(self, message: dict[str, Any]) -> None:
        if message["type"] == "clip":
            self.clips.append(message)
        elif message["type"] == "error":
            self.errors.append(message)
        text = json.dumps(message)
        for client in self.clients:
            if client.kind == "page":
                client.put(text)

    def _on_change(self, name: str, value: Any, state: ControlState) -> None:
        self.publish({"type": "param", "name": name, "value": value})
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._to_listeners, name, value)
            except RuntimeError:
                pass

    def _to_listeners(self, name: str, value: Any) -> None:
        path = PARAMETER_PREFIX + name
        packet = None
        for client in self.clients:
            if client.kind == "oscquery" and path in client.listening:
                packet = packet or encode_message(path, [osc_value(value)])
                client.put(packet)

    def hello(self) -> dict[str, Any]:
        """Everything a newly opened page needs."""
        return {"type": "hello", "parameters": [_spec(spec) for spec in PARAMETERS.values()],
                "state": self.store.snapshot().as_dict(), "presets": self._presets(),
                "bank": self._bank_slots(), "clips": list(self.clips), "errors": list(self.errors),
                "live": self.live}

    async def run_metrics(self) -> None:
        """Read the live status every METRICS_PERIOD and publish what changed (runs until cancelled)."""
        while True:
            await asyncio.sleep(METRICS_PERIOD)
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - a failing provider must not end the task
                log.debug("live status failed", exc_info=True)

    def _poll(self) -> None:
        live = self._live()
        if live != self.live:
            self.live = live
            self._fanout({"type": "live", **live})
        if self.actions.bank is not self._bank:
            self._bank = self.actions.bank
            self._fanout({"type": "bank", "bank": self._bank_slots()})

    def _live(self) -> dict[str, Any]:
        raw = dict(self.status()) if self.status is not None else {}
        state = self.store.snapshot()
        live = {key: _plain(raw[key]) for key in LIVE_KEYS if key in raw}
        live.setdefault("bpm", state.bpm)
        live.setdefault("tempo_source", "control")
        live.setdefault("current_bar", self._ticked[0] if self._ticked else raw.get("bar", 0))
        live["bars"] = state.bars
        live.setdefault("bar_in_loop", int(live["current_bar"]) % state.bars)
        live["beat"] = self._beat(live)
        return live

    def _beat(self, live: dict[str, Any]) -> int:
        """The beat in the bar: from ticks when a clock gives them, else from the time since the bar changed."""
        now = time.monotonic()
        if self._ticked is not None and now - self._ticked[2] < 4 * 60.0 / max(live["bpm"], 1.0):
            return self._ticked[1]
        bar = int(live["current_bar"])
        if bar != self._bar_seen[0]:
            self._bar_seen = (bar, now)
        if not live.get("rolling", True):
            return 0
        elapsed = now - self._bar_seen[1]
        beats = int(live.get("beats_per_bar") or self.beats_per_bar)
        return min(beats - 1, int(elapsed * float(live["bpm"]) / 60.0))

    def _presets(self) -> list[str]:
        presets = self.actions.presets
        if presets is None:
            return []
        return [name for name in presets.names() if name != "midi-learned"]

    def _bank_slots(self) -> list[dict[str, Any]]:
        return [slot.to_toml() for slot in self.actions.bank.slots]


def _spec(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "kind": spec.kind, "doc": spec.doc, "low": spec.low, "high": spec.high,
            "choices": list(spec.choices), "allowed": spec.allowed()}


def _plain(value: Any) -> Any:
    """A JSON-safe scalar."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    try:
        return round(float(value), 4)
    except (TypeError, ValueError):
        return str(value)
