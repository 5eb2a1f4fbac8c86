"""Generation ahead of playback: one worker thread keeps the next loop ready.

Two threads, each woken at once by :meth:`GenerationWorker.wake` (else every few ms):
- the refit thread refits the playing loop and the offered next loop when the tempo in
  force changed (the spectrogram is time-resampled, never dropped). It never waits behind a
  generation, so a tempo change is followed within one refit's time; meanwhile the core keeps
  the old loop on the new grid (each bar starts on its line);
- the generation thread plans the clip that should follow the one playing
  (:class:`~bridge.live.walk.SeedWalk` with the newest control state); if the offered clip no
  longer matches the plan it is withdrawn; if no matching clip is offered it generates one,
  with a cancel check that interrupts the engine as soon as the control state changes the
  plan (newest state wins); it offers the finished loop to the player, which starts it on the
  next loop boundary.
Both change the player's offer under one lock.

Failures (exceptions, non-finite or wrongly sized audio) are counted, reported through
``on_error`` and retried with a growing pause; the player meanwhile keeps looping what it has.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from bridge.engine.protocol import GenerationCancelled
from bridge.errors import BridgeError
from bridge.live.loop import Loop, LoopTempo
from bridge.live.metrics import GenerationStats
from bridge.live.player import Player
from bridge.live.refit import Refitter
from bridge.live.tempo import TempoReading
from bridge.live.walk import Plan, SeedWalk, WalkStep
from bridge.state import StateStore

log = logging.getLogger(__name__)

#: Seconds between rounds when nothing wakes the worker.
POLL_SECONDS = 0.02
#: Longest pause between retries after repeated failures.
MAX_RETRY_SECONDS = 5.0


class GenerationFault(BridgeError):
    """An engine returned unusable audio (non-finite samples or the wrong length)."""


class GenerationWorker:
    """The generation thread (see the module docstring).

    ``engine.generate(request, num_samples, sample_rate, cancel)`` makes clips; ``tempo()``
    gives the tempo in force; ``tail`` is the loops' reflected tail in frames.
    """

    def __init__(self, engine: Any, store: StateStore, player: Player, tempo: Callable[[], TempoReading],
                 walk: SeedWalk, refitter: Refitter, stats: GenerationStats, tail: int,
                 on_error: Callable[[BaseException], None] | None = None, retry_seconds: float = 0.5) -> None:
        self.engine, self.store, self.player, self.tempo = engine, store, player, tempo
        self.walk, self.refitter, self.stats, self.tail = walk, refitter, stats, tail
        self.on_error, self.retry_seconds = on_error, retry_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._refit_wake = threading.Event()
        self._offer_lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="riff-bridge-worker", daemon=True)
        self._refit_thread = threading.Thread(target=self._run_refits, name="riff-bridge-refit", daemon=True)
        self._plans: dict[int, Plan] = {}
        self._serial = 0
        self._failures_in_row = 0
        self._retry_at = 0.0

    @property
    def started(self) -> bool:
        """True once :meth:`start` ran."""
        return self._thread.ident is not None

    def start(self) -> None:
        """Start the threads."""
        self._refit_thread.start()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt any generation and join the threads."""
        self._stop.set()
        self._wake.set()
        self._refit_wake.set()
        for thread in (self._thread, self._refit_thread):
            if thread.is_alive():
                thread.join(timeout)

    def wake(self) -> None:
        """Run the next rounds now (control state or tempo changed)."""
        self._refit_wake.set()
        self._wake.set()

    def _run_refits(self) -> None:
        while not self._stop.is_set():
            try:
                self._refit_to(self.tempo().loop_tempo())
            except Exception as err:  # last guard: the thread must not die
                self._fail(err)
            self._refit_wake.wait(POLL_SECONDS)
            self._refit_wake.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:  # last guard: the worker thread must not die
                self._fail(err)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def step(self) -> None:
        """One round: make the next clip if one is needed."""
        reading = self.tempo()
        if time.monotonic() < self._retry_at:
            return
        with self._offer_lock:
            wanted = self._wanted()
            if wanted is None:
                self._publish(busy=False)
        if wanted is not None and not self._stop.is_set():
            self._make(*wanted, reading)

    # -- planning -------------------------------------------------------------------------

    def _previous_step(self) -> WalkStep | None:
        playing = self.player.current
        plan = self._plans.get(playing.serial) if playing is not None else None
        return plan.step if plan is not None else None

    def _waiting(self) -> Loop | None:
        """The offered next loop when the player has not taken it yet."""
        following, playing = self.player.offer.next, self.player.current
        if following is None or (playing is not None and following.serial == playing.serial):
            return None
        return following

    def _wanted(self) -> tuple[Plan, WalkStep | None] | None:
        """The plan to generate (with the step it follows), or None when the right clip is there."""
        previous = self._previous_step()
        plan = self.walk.plan(previous, self.store.snapshot())
        waiting = self._waiting()
        if waiting is not None:
            if self._plans.get(waiting.serial) == plan:
                return None
            self._publish(next=None)
        else:
            playing = self.player.current
            if playing is not None and self._plans.get(playing.serial) == plan:
                return None
        return plan, previous

    def _stale(self, plan: Plan, previous: WalkStep | None) -> bool:
        return self._stop.is_set() or self.walk.plan(previous, self.store.snapshot()) != plan

    # -- generation -----------------------------------------------------------------------

    def _make(self, plan: Plan, previous: WalkStep | None, reading: TempoReading) -> None:
        request = plan.request(reading.tempo)
        self._publish(busy=True)
        started = time.perf_counter()
        clip = self._generate(request, reading.sample_rate, lambda: self._stale(plan, previous))
        if clip is None:
            return
        elapsed = time.perf_counter() - started
        self._serial += 1
        loop = Loop.from_clip(clip, plan.bars, reading.loop_tempo(), self._serial, self.tail, request=request)
        self._remember(loop.serial, plan)
        self._publish(next=loop, busy=False)
        self.stats.add_clip(elapsed, loop.seconds())
        self._failures_in_row = 0

    def _generate(self, request: Any, rate: int, cancel: Callable[[], bool]) -> Any:
        """The engine's checked clip, or None when cancelled or failed (counted)."""
        frames = request.num_samples(rate)
        try:
            clip = self.engine.generate(request, frames, rate, cancel)
            _check_audio(clip.audio, frames)
            return clip
        except GenerationCancelled:
            with self.stats.lock:
                self.stats.cancelled += 1
        except Exception as err:
            self._fail(err)
        return None

    def _remember(self, serial: int, plan: Plan) -> None:
        self._plans[serial] = plan
        playing = self.player.current
        oldest = min(serial, playing.serial if playing is not None else serial) - 2
        for old in [s for s in self._plans if s < oldest]:
            del self._plans[old]

    # -- tempo changes --------------------------------------------------------------------

    def _refit_to(self, target: LoopTempo) -> None:
        playing, offer = self.player.current, self.player.offer
        if playing is not None and not playing.tempo.matches(target):
            done = offer.refit
            if done is None or done.serial != playing.serial or not done.tempo.matches(target):
                self._offer_refit(playing, target)
        waiting = self._waiting()
        if waiting is not None and not waiting.tempo.matches(target):
            self._offer_refit(waiting, target)

    def _offer_refit(self, loop: Loop, target: LoopTempo) -> None:
        try:
            refit = self.refitter.refit(loop, target)
            _check_audio(refit.clip.audio if refit.clip else refit.audio.T, refit.frames)
        except Exception as err:
            self._fail(err)
            return
        with self.stats.lock:
            self.stats.refits += 1
        with self._offer_lock:
            playing, waiting = self.player.current, self._waiting()
            if playing is not None and playing.serial == refit.serial:
                self._publish(refit=refit)
            elif waiting is not None and waiting.serial == refit.serial:
                self._publish(next=refit)

    # -- shared ---------------------------------------------------------------------------

    def _publish(self, **changes: Any) -> None:
        """Replace the player's offer (under the offer lock: both threads write it)."""
        with self._offer_lock:
            offer = self.player.offer
            if any(getattr(offer, name) is not value for name, value in changes.items()):
                self.player.offer = replace(offer, **changes)

    def _fail(self, error: BaseException) -> None:
        self.stats.add_failure(error)
        self._failures_in_row += 1
        pause = min(MAX_RETRY_SECONDS, self.retry_seconds * 2 ** (self._failures_in_row - 1))
        self._retry_at = time.monotonic() + pause
        log.warning("generation failed (%s); keeping the current loop, retrying in %.1f s", error, pause)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # a broken reporter must not stop generation
                log.exception("on_error callback failed")


def _check_audio(audio: np.ndarray, frames: int) -> None:
    """Raise GenerationFault unless ``audio`` is finite and within 1% of ``frames`` long."""
    array = np.asarray(audio)
    if array.ndim == 0 or abs(array.shape[0] - frames) > max(2, frames // 100):
        raise GenerationFault(f"audio: expected {frames} frames, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise GenerationFault("audio: non-finite samples (NaN or infinity)")
