"""The one-line live status of ``riff-bridge serve``: redrawn in a terminal, logged otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

log = logging.getLogger("riff-bridge.status")


def status_text(metrics: Any, state: Any) -> str:
    """Tempo (quarter notes per minute, with the meter and its beat unit), bar, prompt, alpha,
    generation time, real-time factor, late clips, xruns; e.g. ``133.00 BPM 7/8 (transport)``
    for a 7/8 source counting 266 eighths per minute."""
    prompt = state.prompt_a if state.alpha < 0.5 else state.prompt_b
    quarter = getattr(metrics, "quarter_bpm", 0.0) or metrics.bpm
    return (f"{quarter:6.2f} BPM {getattr(metrics, 'meter', '4/4')} ({metrics.tempo_source}) | "
            f"bar {metrics.current_bar:4d} | "
            f"{prompt[:28]!r} a={state.alpha:.2f} | gen {metrics.generation_seconds_last:5.2f} s "
            f"RTF {metrics.real_time_factor:4.2f} | late {metrics.late_clips} | xruns {metrics.xruns}"
            f"{' | fail ' + str(metrics.failures) if metrics.failures else ''}")


class StatusLine:
    """Shows :func:`status_text` on ``stream``: redrawn in place on a TTY, else a log line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def show(self, text: str) -> None:
        """Draw (TTY) or log the line."""
        if not self.tty:
            log.info("%s", text)
            return
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """End the redrawn line so later output starts on a fresh one."""
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
