"""Live engine metrics: counters kept by the worker and the realtime side, and their snapshot.

:class:`GenerationStats` is written by the worker thread only; the realtime counters live
on the :class:`~bridge.live.processor.Processor` and :class:`~bridge.live.player.Player`.
:class:`LiveMetrics` is the frozen snapshot anyone may read and keep.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LiveMetrics:
    """One snapshot of the live engine.

    Generation: ``clips_generated``, ``generation_seconds_last``/``_mean`` (wall time per
    clip), ``real_time_factor`` (generation seconds / clip seconds, mean; below 1 keeps up),
    ``failures`` (exceptions or non-finite audio, retried), ``cancelled`` (stale work
    interrupted), ``refits``. Playback: ``clips_started`` (new clips begun on a bar line),
    ``late_clips`` (loop boundaries where the worker was still busy, so the loop repeated),
    ``underruns`` (blocks rolling with nothing to play: before the first clip),
    ``resyncs``, ``xruns`` (JACK), ``callback_us_max``/``_mean``/``_p99`` (our callback's
    own run time), ``start_delay_us_max`` (how late in the cycle it began: scheduling plus
    waiting for the GIL), ``blocks``. Position:
    ``current_bar`` (0-based), ``bar_in_loop``, ``playing_serial``, ``rolling``, ``bpm``,
    ``tempo_source``, ``meter`` (e.g. ``7/8``), ``quarter_bpm`` (the tempo in quarter notes per
minute; ``bpm`` counts beats of the meter's unit), ``sample_rate``, ``block_size``;
``midi_dropped`` and ``input_dropped`` ring overflows (messages, frames).
    """

    clips_generated: int = 0
    generation_seconds_last: float = 0.0
    generation_seconds_mean: float = 0.0
    real_time_factor: float = 0.0
    failures: int = 0
    cancelled: int = 0
    refits: int = 0
    clips_started: int = 0
    late_clips: int = 0
    underruns: int = 0
    resyncs: int = 0
    xruns: int = 0
    callback_us_max: float = 0.0
    callback_us_mean: float = 0.0
    callback_us_p99: float = 0.0
    start_delay_us_max: float = 0.0
    blocks: int = 0
    current_bar: int = 0
    bar_in_loop: int = 0
    playing_serial: int = -1
    rolling: bool = False
    bpm: float = 0.0
    tempo_source: str = "control"
    sample_rate: int = 0
    block_size: int = 0
    midi_dropped: int = 0
    meter: str = "4/4"
    beats_per_bar: int = 4
    beat_unit: int = 4
    quarter_bpm: float = 0.0
    input_dropped: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for status replies and logs)."""
        return asdict(self)

    def summary(self) -> str:
        """One human line."""
        return (f"bar {self.current_bar} ({self.tempo_source} {self.quarter_bpm:.2f} BPM (quarter), "
                f"{self.meter}, "
                f"{'rolling' if self.rolling else 'stopped'}), clips {self.clips_generated} made / "
                f"{self.clips_started} played, gen {self.generation_seconds_mean:.2f} s (RTF "
                f"{self.real_time_factor:.2f}), late {self.late_clips}, failures {self.failures}, "
                f"xruns {self.xruns}, underruns {self.underruns}, callback max "
                f"{self.callback_us_max:.0f} us mean {self.callback_us_mean:.0f} us")


@dataclass
class GenerationStats:
    """Worker-side counters (written by the worker thread, read under ``lock``)."""

    clips_generated: int = 0
    generation_seconds_total: float = 0.0
    generation_seconds_last: float = 0.0
    clip_seconds_total: float = 0.0
    failures: int = 0
    cancelled: int = 0
    refits: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_clip(self, generation_seconds: float, clip_seconds: float) -> None:
        """Count one finished clip."""
        with self.lock:
            self.clips_generated += 1
            self.generation_seconds_total += generation_seconds
            self.generation_seconds_last = generation_seconds
            self.clip_seconds_total += clip_seconds

    def add_failure(self, error: BaseException) -> None:
        """Count one failed generation."""
        with self.lock:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"

    def fields(self) -> dict[str, Any]:
        """The generation part of :class:`LiveMetrics`."""
        with self.lock:
            made, gen, clip = self.clips_generated, self.generation_seconds_total, self.clip_seconds_total
            counts = {"failures": self.failures, "cancelled": self.cancelled, "refits": self.refits,
                      "last_error": self.last_error, "generation_seconds_last": self.generation_seconds_last}
        return {"clips_generated": made, "generation_seconds_mean": gen / made if made else 0.0,
                "real_time_factor": gen / clip if clip > 0 else 0.0, **counts}
