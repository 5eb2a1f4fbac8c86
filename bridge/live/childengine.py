"""An engine adapter that runs any engine in a child process, off the JACK process's GIL.

The JACK process callback is Python, so it needs the GIL before every block. A model running
in a thread of the same process holds the GIL between its many small operations; when that
thread is descheduled on a busy machine, the realtime thread waits for it and may miss its
deadline. :class:`ChildProcessEngine` keeps the model in a child process (spawned, so no
JACK threads are forked) and only waits on a pipe in the worker thread, which releases the GIL.

It implements the same ``generate(request, num_samples, sample_rate, cancel)`` protocol; the
cancel check is polled in the parent and forwarded through a shared flag that the child's
engine polls between steps. ``codec.mel_to_audio`` (used for tempo refits) also runs in the
child, with the child engine's codec.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from typing import Any, Callable

import numpy as np

from bridge.engine.protocol import CancelCheck, GenerationCancelled
from bridge.errors import BridgeError, ParameterError
from bridge.live.heap import ARENA_MAX, trim_heap, tune_heap
from bridge.live.priority import MODEL_NICE, MODEL_POLICY, POLICIES, raise_thread_priority, set_scheduling_policy

log = logging.getLogger(__name__)

#: oneDNN primitive cache entries in the model process (see _serve).
ONEDNN_CACHE = 32
#: glibc mmap threshold in the model process: a fixed 16 MiB. Blocks above it cost page faults
#: every time they are made: 256 KiB made tiny-model generation 2.7x slower, and 4 MiB made the
#: mini model's 2x slower than with glibc's default (real-time factor 0.546 against 0.274 in
#: one process: Griffin-Lim's spectra of a 2-bar clip are about 13 MB). In the model process,
#: 40 clips of 1-4 bars: real-time factor 0.419 at 16 MiB, 0.598 at 4 MiB; bench/soak.py --model
#: mini --seconds 300: memory growth +4.6 % against +2.2 %, floor growth -3.3 % against -2.3 %.
MODEL_MMAP_THRESHOLD = 16 * 1024 * 1024
#: Seconds between cancel checks while waiting for the child.
POLL_SECONDS = 0.02


class ChildProcessError(BridgeError):
    """The generation process could not start, or died."""


class ChildProcessEngine:
    """Runs ``factory()`` (a picklable callable returning an engine) in a child process.

    ``start()`` (also called by the first ``generate``) spawns the child and waits up to
    ``start_timeout`` seconds for the engine to load; ``close()`` (or ``with``) ends it. A
    child that dies is restarted by the next call. ``nice``: the child's nice value (default
    :data:`~bridge.live.priority.MODEL_NICE`; None leaves it); ``policy``: its scheduling
    policy, one of :data:`~bridge.live.priority.POLICIES` (default
    :data:`~bridge.live.priority.MODEL_POLICY`; None leaves it).
    """

    def __init__(self, factory: Callable[[], Any], start_timeout: float = 600.0,
                 nice: int | None = MODEL_NICE, policy: str | None = MODEL_POLICY) -> None:
        if policy is not None and policy not in POLICIES:
            raise ParameterError("policy", f"one of {', '.join(POLICIES)}", policy)
        self.factory, self.start_timeout, self.nice, self.policy = factory, start_timeout, nice, policy
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None
        self._cancel = self._context.Event()
        self._lock = threading.Lock()
        self.codec = _ChildCodec(self)

    def start(self) -> "ChildProcessEngine":
        """Spawn the child and wait until its engine is loaded; raises ChildProcessError."""
        with self._lock:
            self._ensure()
        return self

    def close(self, timeout: float = 1.0) -> None:
        """Ask the child to exit, then terminate it if it has not within ``timeout`` seconds
        (a busy child may be decoding a long clip: shutdown must not wait for it; idempotent)."""
        with self._lock:
            process, conn, self._process, self._conn = self._process, self._conn, None, None
            if process is None:
                return
            self._cancel.set()
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()

    def __enter__(self) -> "ChildProcessEngine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: CancelCheck | None = None) -> Any:
        """The child engine's clip for ``request`` (same contract as the wrapped engine)."""
        return self._call(("generate", request, num_samples, sample_rate), cancel)

    def _call(self, message: tuple[Any, ...], cancel: CancelCheck | None) -> Any:
        with self._lock:
            self._ensure()
            self._cancel.clear()
            self._conn.send(message)
            return self._result(self._wait(cancel))

    def _wait(self, cancel: CancelCheck | None) -> tuple[Any, ...]:
        forwarded = False
        while True:
            try:
                if self._conn.poll(POLL_SECONDS):
                    return self._conn.recv()
            except (EOFError, OSError) as err:
                self._died(err)
            if not forwarded and cancel is not None and cancel():
                self._cancel.set()
                forwarded = True
            if not self._process.is_alive():
                self._died(None)

    def _result(self, reply: tuple[Any, ...]) -> Any:
        kind, value = reply
        if kind == "ok":
            return value
        if kind == "cancelled":
            raise GenerationCancelled(str(value))
        raise value

    def _died(self, err: BaseException | None) -> None:
        code = self._process.exitcode if self._process is not None else None
        self._process, self._conn = None, None
        raise ChildProcessError(f"generation process died (exit code {code}{f', {err}' if err else ''}); "
                                "it restarts on the next clip")

    def _ensure(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(self.factory, child, self._cancel, self.nice, self.policy),
                                        name="riff-bridge-generator", daemon=True)
        process.start()
        child.close()
        self._await_ready(process, parent)
        self._process, self._conn = process, parent

    def _await_ready(self, process: Any, conn: Any) -> None:
        """Wait for the child's engine to load; raise its load error or ChildProcessError."""
        deadline = time.monotonic() + self.start_timeout
        while not conn.poll(0.1):
            if not process.is_alive() or time.monotonic() > deadline:
                process.terminate()
                raise ChildProcessError(f"generation process did not start in {self.start_timeout:g} s "
                                        f"(exit code {process.exitcode})")
        try:
            self._result(conn.recv())
        except BaseException:
            process.join(5.0)
            raise


class _ChildCodec:
    """``mel_to_audio`` of the child engine's codec (for refits), as a numpy array."""

    def __init__(self, owner: ChildProcessEngine) -> None:
        self._owner = owner

    def mel_to_audio(self, mel: Any, num_samples: int | None = None, sample_rate: int | None = None) -> np.ndarray:
        """``(channels, samples)`` audio decoded in the child."""
        return self._owner._call(("decode", np.asarray(mel), num_samples, sample_rate), None)


def _serve(factory: Callable[[], Any], conn: Any, cancel: Any, nice: int | None, policy: str | None) -> None:
    """Child main loop: build the engine, then answer generate/decode until told to stop."""
    # Each clip length is a new convolution shape; oneDNN caches primitives per shape (1024 by
    # default), which grows memory all session long. Set before torch is imported here.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE))
    raise_thread_priority(nice)
    set_scheduling_policy(policy)
    tune_heap(MODEL_MMAP_THRESHOLD, ARENA_MAX)
    try:
        engine = factory()
    except BaseException as err:  # report any load failure to the parent
        conn.send(("error", _portable(err)))
        return
    conn.send(("ok", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        conn.send(_answer(engine, message, cancel.is_set))
        trim_heap()


def _answer(engine: Any, message: tuple[Any, ...], cancelled: Callable[[], bool]) -> tuple[str, Any]:
    try:
        if message[0] == "generate":
            _, request, num_samples, sample_rate = message
            return "ok", engine.generate(request, num_samples, sample_rate, cancelled)
        _, mel, num_samples, sample_rate = message
        audio = engine.codec.mel_to_audio(mel, num_samples, sample_rate)
        return "ok", audio.cpu().numpy() if hasattr(audio, "cpu") else np.asarray(audio)
    except GenerationCancelled as err:
        return "cancelled", str(err)
    except BaseException as err:
        return "error", _portable(err)


def _portable(err: BaseException) -> BaseException:
    """``err`` if it pickles, else a BridgeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return BridgeError(f"{type(err).__name__}: {err}")
