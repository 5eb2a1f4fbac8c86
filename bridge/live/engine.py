"""The live engine: generated loops played into JACK (or memory) on the bar grid.

Usage::

    store = StateStore(ControlState(bpm=120, bars=2))
    with LiveEngine(store, FakeEngine(), JackOutput("riff-bridge")) as live:
        ...                          # control surfaces call store.set(...)
        print(live.metrics().summary())
        live.boundaries()            # loop starts (frames) for checks

Threads: JACK's realtime thread runs the native :class:`~bridge.live.core.Core` (C, no
Python); a worker thread generates ahead (:class:`GenerationWorker`); a monitor thread
(every ``poll_seconds``) releases loops the core retired, drains incoming MIDI to
``on_midi``/:attr:`LiveEngine.midi`, hands input audio and bar lines to ``input_recorder``,
tracks the tempo in force, and keeps the output gain on the control state's volume/mute.
Python threads share only immutable snapshots and single attributes; the core is reached
only through its command ring and the rings it writes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from bridge.errors import check_range
from bridge.live.core import SOURCE_NAMES, ClipStart, Core, MidiMessage
from bridge.live.crossfade import DEFAULT_CROSSFADE_MS, Crossfade
from bridge.live.loop import SLACK_FRAMES
from bridge.live.metrics import GenerationStats, LiveMetrics
from bridge.live.player import Player
from bridge.live.refit import DEFAULT_REFIT_ITERATIONS, Refitter
from bridge.live.tempo import TempoReading, TempoTracker
from bridge.live.walk import DEFAULT_ALPHA_STEP, SeedWalk
from bridge.live.worker import GenerationWorker
from bridge.state import ControlState, StateStore
from bridge.timing import Tempo

log = logging.getLogger(__name__)


class Output(Protocol):
    """Where blocks go: :class:`~bridge.live.jackoutput.JackOutput` or :class:`~bridge.live.offline.OfflineOutput`."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def block_size(self) -> int: ...

    def open(self) -> None: ...

    def attach(self, core: Core, tempo: Tempo | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LiveOptions:
    """Live engine settings.

    ``free_run``: keep playing on our own clock while the transport is stopped (default:
    silence). ``crossfade_ms``: joint length. ``alpha_step``: seed-walk step per clip (0: no
    walk). ``refit_iterations``: Griffin-Lim iterations of a tempo refit when the engine has no
    codec. ``retry_seconds``: first pause after a failed generation. ``poll_seconds``: monitor
    period. ``prime_seconds``: how long ``start`` waits for the first clip before activating
    the JACK client (0: activate at once and play silence until it is ready).
    """

    free_run: bool = False
    crossfade_ms: float = DEFAULT_CROSSFADE_MS
    alpha_step: float = DEFAULT_ALPHA_STEP
    refit_iterations: int = DEFAULT_REFIT_ITERATIONS
    retry_seconds: float = 0.5
    poll_seconds: float = 0.01
    prime_seconds: float = 0.0

    def __post_init__(self) -> None:
        check_range("alpha_step", self.alpha_step, 0.0, 1.0)
        check_range("retry_seconds", self.retry_seconds, 0.0, 60.0)
        check_range("poll_seconds", self.poll_seconds, 0.0005, 1.0)


class LiveEngine:
    """Generation ahead + bar-aligned playback (see the module docstring).

    ``store``: the control state; ``engine``: makes clips (``generate(request, num_samples,
    sample_rate, cancel)``); ``output``: JACK client or offline output. ``on_midi(message)``
    receives every non-clock MIDI message from ``midi_in`` (on the monitor thread; they are
    also queued on :attr:`midi` when ``on_midi`` is None); ``on_error(exception)`` hears
    generation failures; ``input_recorder.feed(blocks, bar_lines)`` (optional) receives the
    captured input (:class:`~bridge.live.core.InputBlock`) and the bar lines that passed
    (:class:`~bridge.live.core.BarLine`) every monitor poll.
    """

    def __init__(self, store: StateStore, engine: Any, output: Output, options: LiveOptions = LiveOptions(),
                 on_midi: Callable[[MidiMessage], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 input_recorder: Any = None) -> None:
        self.store, self.engine, self.output, self.options = store, engine, output, options
        self.on_midi, self.on_error, self.input_recorder = on_midi, on_error, input_recorder
        self.midi: "queue.SimpleQueue[MidiMessage]" = queue.SimpleQueue()
        self.stats = GenerationStats()
        self.core: Core | None = None
        self.player: Player | None = None
        self.tracker: TempoTracker | None = None
        self.worker: GenerationWorker | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "LiveEngine":
        """Open the output, start the worker and monitor, and begin playing.

        On any failure everything started so far is stopped again and the error raised.
        """
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "LiveEngine":
        self.output.open()
        state = self.store.snapshot()
        self.core = self._build_core(state)
        self.player = Player(self.core)
        self.tracker = TempoTracker(self.core, lambda: self.store.snapshot().bpm,
                                    getattr(self.output, "request_tempo", None),
                                    master=bool(getattr(self.output, "timebase_master", False)))
        self.worker = self._build_worker()
        self._apply_gain(state)
        self._unsubscribe = self.store.subscribe(self._on_state)
        self.tracker.update()
        self.worker.start()
        self._wait_for_first_clip()
        self.output.attach(self.core, Tempo(state.bpm))
        self.tracker.update()
        self._monitor = threading.Thread(target=self._watch, name="riff-bridge-monitor", daemon=True)
        self._monitor.start()
        return self

    def _wait_for_first_clip(self) -> None:
        """Let the worker make the first loop before the client activates (so playback starts
        with music, not silence), up to ``options.prime_seconds``; then play regardless."""
        deadline = time.monotonic() + self.options.prime_seconds
        while self.player.offer.next is None and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop generating and close the output (idempotent)."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.worker is not None and self.worker.started:
            self.worker.stop()
        if self._monitor is not None:
            self._monitor.join(5.0)
        self.output.close()

    def __enter__(self) -> "LiveEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading --------------------------------------------------------------------------

    def metrics(self) -> LiveMetrics:
        """A snapshot of every counter (any thread)."""
        core = self.core
        if core is None:
            return LiveMetrics(**self.stats.fields())
        reading, times = self.tempo(), core.callback_times()
        current = self.player.current  # type: ignore[union-attr]
        count = core.counter
        return LiveMetrics(
            **self.stats.fields(), clips_started=count("clips_started"), late_clips=count("late"),
            underruns=count("underruns"), resyncs=count("resyncs"), xruns=count("xruns"),
            callback_us_max=times.max_us, callback_us_mean=times.mean(),
            callback_us_p99=times.percentile(0.99),
            start_delay_us_max=count("start_delay_max") * 1e6 / core.sample_rate,
            blocks=count("blocks"), current_bar=self.player.bar, bar_in_loop=self.player.bar_in_loop,  # type: ignore[union-attr]
            playing_serial=current.serial if current is not None else -1,
            rolling=bool(core.struct.position.rolling), bpm=reading.tempo.bpm, tempo_source=reading.source,
            sample_rate=core.sample_rate, block_size=getattr(self.output, "block_size_seen", 0)
            or self.output.block_size, midi_dropped=count("midi_dropped"),
            meter=f"{reading.tempo.meter.beats_per_bar}/{reading.tempo.meter.beat_unit}",
            beats_per_bar=reading.tempo.meter.beats_per_bar, beat_unit=reading.tempo.meter.beat_unit,
            quarter_bpm=reading.quarter_bpm(), input_dropped=count("input_dropped"),
        )

    def boundaries(self) -> tuple[ClipStart, ...]:
        """Every loop start so far (newest 4096): frame, JACK frame, bar, clip serial, new or
        repeat, and frames into the bar (0 on a bar line)."""
        return self.core.clip_starts() if self.core is not None else ()

    def tempo(self) -> TempoReading:
        """The tempo in force."""
        if self.tracker is None:
            raise RuntimeError("LiveEngine.tempo before start()")
        return self.tracker.reading()

    def wait_for(self, condition: Callable[[LiveMetrics], bool], timeout: float) -> LiveMetrics:
        """Poll :meth:`metrics` until ``condition`` holds; raises TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            metrics = self.metrics()
            if condition(metrics):
                return metrics
            if time.monotonic() > deadline:
                raise TimeoutError(f"live engine: condition not met in {timeout:g} s; {metrics.summary()}")
            time.sleep(0.01)

    # -- wiring ---------------------------------------------------------------------------

    def _build_core(self, state: ControlState) -> Core:
        rate = self.output.sample_rate
        return Core(rate, Tempo(state.bpm).frames_per_bar(rate),
                    Crossfade.for_rate(rate, self.options.crossfade_ms), self.options.free_run)

    def _build_worker(self) -> GenerationWorker:
        opts = self.options
        tail = self.core.crossfade.frames + SLACK_FRAMES  # type: ignore[union-attr]
        refitter = Refitter(getattr(self.engine, "codec", None), opts.refit_iterations)
        return GenerationWorker(self.engine, self.store, self.player, self.tempo,  # type: ignore[arg-type]
                                SeedWalk(opts.alpha_step), refitter, self.stats, tail,
                                self.on_error, opts.retry_seconds)

    # -- monitor thread -------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stop.wait(self.options.poll_seconds):
            self.core.release_retired()  # type: ignore[union-attr]
            self._dispatch_midi()
            self._feed_input()
            before = self.tracker.reading()  # type: ignore[union-attr]
            if self.tracker.update() is not before:  # type: ignore[union-attr]
                log.info("tempo %.2f BPM from %s", self.tempo().tempo.bpm, self.tempo().source)
                self.worker.wake()  # type: ignore[union-attr]

    def _feed_input(self) -> None:
        core = self.core
        blocks, lines = core.drain_input(), core.drain_bar_lines()  # type: ignore[union-attr]
        if self.input_recorder is not None and (blocks or lines):
            try:
                self.input_recorder.feed(blocks, lines)
            except Exception:
                log.exception("input recorder failed")

    def _dispatch_midi(self) -> None:
        for message in self.core.drain_midi():  # type: ignore[union-attr]
            if self.on_midi is None:
                self.midi.put(message)
                continue
            try:
                self.on_midi(message)
            except Exception:
                log.exception("on_midi callback failed for %s", message.data.hex())

    def _on_state(self, name: str, value: Any, state: ControlState) -> None:
        if name in ("volume", "mute"):
            self._apply_gain(state)
        elif self.worker is not None:
            self.worker.wake()

    def _apply_gain(self, state: ControlState) -> None:
        if self.core is not None:
            self.core.send("GAIN", a=0.0 if state.mute else float(state.volume))


__all__ = ["LiveEngine", "LiveOptions", "Output", "SOURCE_NAMES"]
