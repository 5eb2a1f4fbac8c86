"""The live engine: generated loops played into JACK (or memory) on the bar grid.

Usage::

    store = StateStore(ControlState(bpm=120, bars=2))
    with LiveEngine(store, FakeEngine(), JackOutput("riff-bridge")) as live:
        ...                          # control surfaces call store.set(...)
        print(live.metrics().summary())
        live.boundaries()            # loop starts (frames) for checks

Threads: JACK's realtime thread runs the :class:`Processor`; a worker thread generates
ahead (:class:`GenerationWorker`); a monitor thread (every ``poll_seconds``) drains
incoming MIDI to ``on_midi``/:attr:`LiveEngine.midi`, tracks the tempo in force, and
keeps the output gain on the control state's volume/mute. They share only immutable
snapshots and single attributes.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from bridge.errors import check_range
from bridge.live.collector import GarbageCollector
from bridge.live.crossfade import DEFAULT_CROSSFADE_MS, Crossfade
from bridge.live.heap import tune_heap
from bridge.live.loop import SLACK_FRAMES
from bridge.live.metrics import GenerationStats, LiveMetrics
from bridge.live.midiring import MidiMessage
from bridge.live.player import ClipStart
from bridge.live.priority import (DEFAULT_NICE, raise_process_priority, raise_thread_priority,
                                  restore_priorities)
from bridge.live.processor import DEFAULT_MAX_BLOCK, SOURCE_NAMES, Processor
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

    def attach(self, processor: Processor, tempo: Tempo | None = None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LiveOptions:
    """Live engine settings.

    ``free_run``: keep playing on our own clock while the transport is stopped (default:
    silence). ``crossfade_ms``: joint length. ``alpha_step``: seed-walk step per clip (0: no
    walk). ``refit_iterations``: Griffin-Lim iterations of a tempo refit when the engine has no
    codec. ``retry_seconds``: first pause after a failed generation. ``switch_interval``:
    Python's thread switch interval while running (short, so the realtime thread gets the GIL
    quickly; None leaves it). ``poll_seconds``: monitor period. ``nice``: nice value of the
    worker and monitor threads (best effort, see :mod:`bridge.live.priority`; None: leave).
    ``prime_seconds``: how long ``start`` waits for the first clip before activating the
    JACK client (0: activate at once and play silence until it is ready).
    """

    free_run: bool = False
    crossfade_ms: float = DEFAULT_CROSSFADE_MS
    alpha_step: float = DEFAULT_ALPHA_STEP
    refit_iterations: int = DEFAULT_REFIT_ITERATIONS
    retry_seconds: float = 0.5
    switch_interval: float | None = 0.0005
    poll_seconds: float = 0.01
    max_block: int = DEFAULT_MAX_BLOCK
    nice: int | None = DEFAULT_NICE
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
    generation failures.
    """

    def __init__(self, store: StateStore, engine: Any, output: Output, options: LiveOptions = LiveOptions(),
                 on_midi: Callable[[MidiMessage], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.store, self.engine, self.output, self.options = store, engine, output, options
        self.on_midi, self.on_error = on_midi, on_error
        self.midi: "queue.SimpleQueue[MidiMessage]" = queue.SimpleQueue()
        self.stats = GenerationStats()
        self.processor: Processor | None = None
        self.tracker: TempoTracker | None = None
        self.worker: GenerationWorker | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._switch_interval = sys.getswitchinterval()
        self._priorities: dict[int, int] = {}
        self.collector = GarbageCollector()

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
        self.processor = self._build_processor(state)
        self.tracker = TempoTracker(self.processor, lambda: self.store.snapshot().bpm,
                                    getattr(self.output, "request_tempo", None),
                                    master=bool(getattr(self.output, "timebase_master", False)))
        self.worker = self._build_worker()
        self._apply_gain(state)
        self._unsubscribe = self.store.subscribe(self._on_state)
        self._tune_runtime()
        self.tracker.update()
        self.worker.start()
        self._wait_for_first_clip()
        self.output.attach(self.processor, Tempo(state.bpm))
        self.tracker.update()
        self._monitor = threading.Thread(target=self._watch, name="riff-bridge-monitor", daemon=True)
        self._monitor.start()
        return self

    def _wait_for_first_clip(self) -> None:
        """Let the worker make the first loop before the client activates (so playback starts
        with music, not silence), up to ``options.prime_seconds``; then play regardless."""
        deadline = time.monotonic() + self.options.prime_seconds
        while self.processor.player.offer.next is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop generating, close the output, restore the interpreter settings (idempotent)."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.worker is not None and self.worker.started:
            self.worker.stop()
        if self._monitor is not None:
            self._monitor.join(5.0)
        self.output.close()
        if self.options.switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        restore_priorities(self._priorities)
        self._priorities = {}
        self.collector.resume()

    def __enter__(self) -> "LiveEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading --------------------------------------------------------------------------

    def metrics(self) -> LiveMetrics:
        """A snapshot of every counter (any thread)."""
        proc = self.processor
        if proc is None:
            return LiveMetrics(**self.stats.fields())
        player, reading = proc.player, self.tempo()
        current = player.current
        blocks = proc.blocks
        return LiveMetrics(
            **self.stats.fields(), clips_started=player.clips_started, late_clips=player.late,
            underruns=player.underruns, resyncs=player.resyncs, xruns=proc.xruns,
            callback_us_max=proc.callback_ns_max / 1000.0,
            callback_us_mean=proc.callback_ns_total / blocks / 1000.0 if blocks else 0.0,
            callback_us_p99=proc.callback_percentile(0.99),
            start_delay_us_max=proc.start_delay_max * 1e6 / proc.sample_rate,
            blocks=blocks, current_bar=player.bar, bar_in_loop=player.bar_in_loop,
            playing_serial=current.serial if current is not None else -1,
            rolling=proc.position.rolling, bpm=reading.tempo.bpm, tempo_source=reading.source,
            sample_rate=proc.sample_rate, block_size=proc.block_size, midi_dropped=proc.midi_ring.dropped,
        )

    def boundaries(self) -> tuple[ClipStart, ...]:
        """Every loop start so far (newest 4096): frame, JACK frame, bar, clip serial, new or repeat."""
        return self.processor.player.log.entries() if self.processor is not None else ()

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

    def _build_processor(self, state: ControlState) -> Processor:
        rate = self.output.sample_rate
        return Processor(rate, self.output.block_size, Tempo(state.bpm),
                         Crossfade.for_rate(rate, self.options.crossfade_ms), self.options.free_run,
                         self.options.max_block)

    def _build_worker(self) -> GenerationWorker:
        proc, opts = self.processor, self.options
        tail = proc.player.crossfade.frames + SLACK_FRAMES  # type: ignore[union-attr]
        refitter = Refitter(getattr(self.engine, "codec", None), opts.refit_iterations)
        return GenerationWorker(self.engine, self.store, proc.player, self.tempo,  # type: ignore[union-attr]
                                SeedWalk(opts.alpha_step), refitter, self.stats, tail,
                                self.on_error, opts.retry_seconds, opts.nice)

    def _tune_runtime(self) -> None:
        """Short GIL switch interval for the realtime thread; every thread of the process at
        ``options.nice`` (any of them may hold the GIL); garbage collection on the monitor thread."""
        self._switch_interval = sys.getswitchinterval()
        self._priorities = raise_process_priority(self.options.nice)
        tune_heap()
        if self.options.switch_interval is not None:
            sys.setswitchinterval(self.options.switch_interval)
        self.collector.suspend()

    # -- monitor thread -------------------------------------------------------------------

    def _watch(self) -> None:
        raise_thread_priority(self.options.nice)
        while not self._stop.wait(self.options.poll_seconds):
            self.processor.player.release_retired()  # type: ignore[union-attr]
            self.collector.collect()
            self._dispatch_midi()
            before = self.tracker.reading()  # type: ignore[union-attr]
            if self.tracker.update() is not before:  # type: ignore[union-attr]
                log.info("tempo %.2f BPM from %s", self.tempo().tempo.bpm, self.tempo().source)
                self.worker.wake()  # type: ignore[union-attr]

    def _dispatch_midi(self) -> None:
        for message in self.processor.midi_ring.drain():  # type: ignore[union-attr]
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
        if self.processor is not None:
            self.processor.gain = 0.0 if state.mute else float(state.volume)


__all__ = ["LiveEngine", "LiveOptions", "Output", "SOURCE_NAMES"]
