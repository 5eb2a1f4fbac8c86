"""Errors as they happen: a logging handler that hands warnings and errors to the live view."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

#: Loggers whose warnings reach the page (the package's modules and the commands').
LOGGERS = ("bridge", "riff-bridge")


class PageLogHandler(logging.Handler):
    """Calls ``publish({"type": "error", ...})`` for each WARNING or worse record (any thread)."""

    def __init__(self, publish: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(logging.WARNING)
        self.publish = publish

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            text = str(record.msg)
        self.publish({"type": "error", "time": time.time(), "level": record.levelname,
                      "source": record.name, "text": text[:1000]})

    def attach(self) -> "PageLogHandler":
        """Listen on :data:`LOGGERS`."""
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def detach(self) -> None:
        """Stop listening."""
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)
