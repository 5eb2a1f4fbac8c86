"""Holding ``/riff/set`` changes until the next beat or bar.

Contract: when ``quantize`` is ``off``, or no clock is attached (the live engine has not
called :meth:`Quantizer.notify_bar` / :meth:`Quantizer.notify_beat` yet, or called
:meth:`Quantizer.detach_clock`), a change applies immediately. Otherwise it is validated
immediately (a bad value is an immediate error) and held; the held changes apply together
(``StateStore.update``) at the next bar tick (``bar`` mode) or next beat or bar tick
(``beat`` mode). A later change of the same parameter replaces the held one. A change of
``quantize`` itself always applies at once (also inside a preset); setting it to ``off``
releases what is held.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bridge.errors import BridgeError, ParameterError
from bridge.state import PARAMETERS, StateStore

log = logging.getLogger(__name__)


class Quantizer:
    """Applies changes to a StateStore now or at the next musical boundary."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._clock_attached = False

    @property
    def clock_attached(self) -> bool:
        """True once a bar or beat tick arrived (until ``detach_clock``)."""
        return self._clock_attached

    def held(self) -> dict[str, Any]:
        """A copy of the changes waiting for the next boundary."""
        with self._lock:
            return dict(self._pending)

    def submit(self, name: str, value: Any) -> bool:
        """Apply or hold one change; True when applied now. Raises ParameterError when invalid."""
        return self.submit_many({name: value})

    def submit_many(self, values: dict[str, Any]) -> bool:
        """Apply or hold several changes all-or-nothing; True when applied now.

        The mode in force when they arrive decides; a ``quantize`` value among them applies at
        once either way. Raises ParameterError (and changes nothing) when any value is invalid.
        """
        if self.store.snapshot().quantize == "off" or not self._clock_attached:
            self._apply_now(values)
            return True
        coerced = {name: _coerce(name, value) for name, value in values.items()}
        mode = coerced.pop("quantize", None)
        with self._lock:
            for name, value in coerced.items():
                self._pending.pop(name, None)
                self._pending[name] = value
        if mode is not None:
            self._apply_now({"quantize": mode})
        return False

    def _apply_now(self, values: dict[str, Any]) -> None:
        state = self.store.update(values)
        with self._lock:
            for name in values:
                self._pending.pop(name, None)
        if state.quantize == "off":
            self.release()

    def notify_bar(self, bar: int) -> None:
        """A bar line (also a beat): release everything held."""
        self._clock_attached = True
        self.release()

    def notify_beat(self, bar: int, beat: int) -> None:
        """A beat: release held changes in ``beat`` mode."""
        self._clock_attached = True
        if self.store.snapshot().quantize == "beat":
            self.release()

    def detach_clock(self) -> None:
        """No more ticks will come (transport stopped): release and apply changes at once from now on."""
        self._clock_attached = False
        self.release()

    def release(self) -> None:
        """Apply every held change now, together."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self.store.update(pending)
        except BridgeError as err:  # values were validated when held; log if the state moved on
            log.warning("quantized changes dropped: %s", err)


def _coerce(name: str, value: Any) -> Any:
    """``value`` validated for parameter ``name`` (ParameterError names either)."""
    spec = PARAMETERS.get(name)
    if spec is None:
        raise ParameterError("name", "one of " + ", ".join(PARAMETERS), name)
    return spec.coerce(value)
