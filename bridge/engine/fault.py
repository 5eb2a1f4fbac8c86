"""Fault injection around any engine, for robustness tests and ``serve --inject-faults``.

Every ``every``-th call fails, cycling through the failures a real model produces: an
exception, an image full of NaN, and an out-of-memory error. The live engine must keep the
current loop playing, report the failure and retry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from bridge.engine.clip import Clip
from bridge.engine.protocol import CancelCheck

KINDS = ("exception", "nan", "oom")


class FaultInjector:
    """Wraps ``engine``; call ``n`` fails when ``n % every == 0`` (``every`` 0: never).

    ``fail_next()`` arms exactly one failure of ``kind`` for the next call. ``injected``
    counts the failures produced.
    """

    def __init__(self, engine: Any, every: int = 0) -> None:
        self.engine = engine
        self.codec = getattr(engine, "codec", None)
        self.every = every
        self.calls = 0
        self.injected = 0
        self._armed: str | None = None

    def fail_next(self, kind: str = "exception") -> None:
        """Make the next ``generate`` fail with ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        self._armed = kind

    def generate(self, request: Any, num_samples: int, sample_rate: int,
                 cancel: CancelCheck | None = None) -> Clip:
        """Delegate, or fail as scheduled."""
        self.calls += 1
        kind = self._due()
        if kind == "exception":
            raise RuntimeError("injected generation fault")
        if kind == "oom":
            raise MemoryError("injected out-of-memory")
        clip = self.engine.generate(request, num_samples, sample_rate, cancel)
        if kind == "nan":
            return replace(clip, audio=np.full_like(clip.audio, np.nan))
        return clip

    def _due(self) -> str | None:
        kind, self._armed = self._armed, None
        if kind is None and self.every and self.calls % self.every == 0:
            kind = KINDS[(self.calls // self.every - 1) % len(KINDS)]
        if kind is not None:
            self.injected += 1
        return kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
