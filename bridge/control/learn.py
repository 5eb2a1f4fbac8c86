"""MIDI learn: the next controller that moves is mapped to an armed parameter.

``/riff/midi/learn PARAM`` arms :class:`MidiLearn`; the next control change (any channel)
becomes a full-range, linear :class:`~bridge.control.midi_map.CcBinding` for PARAM on that
controller and channel (``toggle`` mode for bool parameters). It is written atomically into
the user's learned-map preset (other mappings there are kept; a mapping of the same controller
and channel is replaced and reported, never dropped silently) and takes effect at once.
"""

from __future__ import annotations

import threading
from typing import Callable

from bridge.control.actions import Actions
from bridge.control.midi_map import MAPPABLE_KINDS, CcBinding
from bridge.errors import BridgeError, ParameterError
from bridge.state import PARAMETERS

#: Called with the new binding and the bindings it replaced.
Learned = Callable[[CcBinding, tuple[CcBinding, ...]], None]
#: Called with an error message when the learned mapping could not be saved.
LearnFailed = Callable[[str], None]


def _ignore(*_: object) -> None:
    return None


class MidiLearn:
    """One pending learn request at a time; a new ``arm`` replaces the previous one."""

    def __init__(self, actions: Actions) -> None:
        self.actions = actions
        self._lock = threading.Lock()
        self._armed: tuple[str, Learned, LearnFailed] | None = None

    @property
    def armed(self) -> str | None:
        """The parameter waiting for a controller, or None."""
        armed = self._armed
        return armed[0] if armed else None

    def arm(self, param: str, on_learned: Learned = _ignore, on_failed: LearnFailed = _ignore) -> None:
        """Wait for the next controller to map it to ``param`` (a number, bool or choice parameter)."""
        spec = PARAMETERS.get(param)
        if spec is None or spec.kind not in MAPPABLE_KINDS:
            mappable = [n for n, s in PARAMETERS.items() if s.kind in MAPPABLE_KINDS]
            raise ParameterError("param", "one of " + ", ".join(mappable), param)
        with self._lock:
            self._armed = (param, on_learned, on_failed)

    def cancel(self) -> bool:
        """Forget the pending request; True when one was pending."""
        with self._lock:
            armed, self._armed = self._armed, None
        return armed is not None

    def offer(self, channel: int, cc: int) -> bool:
        """A control change on ``channel`` (1..16): True when it was consumed by learning."""
        with self._lock:
            armed, self._armed = self._armed, None
        if armed is None:
            return False
        param, on_learned, on_failed = armed
        mode = "toggle" if PARAMETERS[param].kind == "bool" else "absolute"
        binding = CcBinding(param=param, cc=cc, channel=channel, mode=mode)
        try:
            replaced = self.actions.learn_binding(binding)
        except (BridgeError, OSError) as err:
            on_failed(f"midi learn {param}: {err}")
            return True
        on_learned(binding, replaced)
        return True
