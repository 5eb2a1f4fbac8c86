"""MIDI messages to actions: the pure translation layer for any MIDI source.

:class:`MidiMapper` takes :class:`mido.Message` objects (from a mido/rtmidi port, or raw bytes
read from a JACK MIDI port via :meth:`MidiMapper.handle_bytes`) and applies them through
:class:`~bridge.control.actions.Actions` using the active controller map:

- control change: MIDI learn first (when armed), then every matching ``[[controller.cc]]``
  binding (7-bit, or 14-bit MSB/LSB pairs; a new MSB resets the LSB to 0) and
  ``[[controller.button]]`` trigger; an unmapped CC 0 is bank select for program changes;
- note-on (velocity > 0): ``[[controller.note]]`` triggers (bank slot or new seed);
- program change: loads ``programs[bank * 128 + program]`` of the map;
- clock, start, continue, stop, song position: passed to the ``clock`` hook (the live
  engine's tempo source) and otherwise ignored;
- anything else: ignored (debug log).

``handle`` never raises: errors (an unmapped program, a missing preset) are logged as
warnings and given to ``on_error``. It takes a lock, so call it from a normal thread, never
from a JACK process callback.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

import mido

from bridge.control.actions import Actions
from bridge.control.learn import MidiLearn
from bridge.control.midi_map import CcBinding, TriggerBinding
from bridge.errors import BridgeError, ParameterError

log = logging.getLogger(__name__)

CLOCK_TYPES = frozenset({"clock", "start", "continue", "stop", "songpos"})
BANK_SELECT_MSB = 0

MessageHook = Callable[[mido.Message], None]


class MidiMapper:
    """Applies MIDI messages to an :class:`Actions` through its controller map."""

    def __init__(self, actions: Actions, learn: MidiLearn | None = None,
                 clock: MessageHook | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.actions = actions
        self.learn = learn
        self.clock = clock
        self.on_error = on_error
        self._lock = threading.Lock()
        self._msb: dict[tuple[int, int | None, int], int] = {}
        self._high: dict[tuple[int, int], bool] = {}
        self._bank = 0

    def handle(self, message: mido.Message) -> None:
        """Apply one message; never raises (errors are logged and reported to ``on_error``)."""
        try:
            with self._lock:
                self._dispatch(message)
        except BridgeError as err:
            self._report(f"MIDI {message}: {err}")
        except Exception as err:  # noqa: BLE001 - a MIDI thread must survive anything
            log.exception("MIDI %s failed", message)
            self._report(f"MIDI {message}: {type(err).__name__}: {err}")

    def handle_bytes(self, data: bytes | Iterable[int]) -> None:
        """Apply one raw MIDI message (e.g. a JACK MIDI event); invalid bytes are reported."""
        try:
            message = mido.Message.from_bytes(list(data))
        except (ValueError, TypeError) as err:
            self._report(f"MIDI bytes {bytes(data)!r}: {err}")
            return
        self.handle(message)

    def _report(self, text: str) -> None:
        log.warning("%s", text)
        if self.on_error is not None:
            self.on_error(text)

    def _dispatch(self, message: mido.Message) -> None:
        if message.type in CLOCK_TYPES:
            if self.clock is not None:
                self.clock(message)
        elif message.type == "control_change":
            self._control_change(message.channel + 1, message.control, message.value)
        elif message.type == "note_on" and message.velocity > 0:
            self._triggers("note", message.channel + 1, message.note)
        elif message.type == "program_change":
            self._program_change(message.channel + 1, message.program)
        else:
            log.debug("MIDI ignored: %s", message)

    def _control_change(self, channel: int, cc: int, value: int) -> None:
        if self.learn is not None and self.learn.offer(channel, cc):
            return
        mapping = self.actions.controller_map
        pressed = self._edge(channel, cc, value)
        bindings = mapping.cc_bindings(channel, cc)
        for binding, part in bindings:
            if binding.mode == "toggle":
                if pressed:
                    self._toggle(binding.param)
            else:
                raw = self._raw(binding, part, channel, value)
                self.actions.set_now(binding.param, binding.value(raw))
        if pressed:
            for trigger in mapping.trigger_bindings("cc", channel, cc):
                self._trigger(trigger)
        if cc == BANK_SELECT_MSB and not bindings and self._program_channel_ok(channel):
            self._bank = value

    def _edge(self, channel: int, cc: int, value: int) -> bool:
        """True when the controller's value rose through 64 (a button press)."""
        was_high = self._high.get((channel, cc), False)
        self._high[(channel, cc)] = value >= 64
        return value >= 64 and not was_high

    def _toggle(self, param: str) -> None:
        current = getattr(self.actions.store.snapshot(), param)
        self.actions.set_now(param, not current)

    def _raw(self, binding: CcBinding, part: str, channel: int, value: int) -> int:
        """The 7- or 14-bit controller value, tracking MSBs of 14-bit pairs per channel."""
        if part == "value":
            return value
        key = (binding.cc, binding.channel, channel)
        if part == "msb":
            self._msb[key] = value
            return value << 7
        return (self._msb.get(key, 0) << 7) | value

    def _triggers(self, source: str, channel: int, number: int) -> None:
        for trigger in self.actions.controller_map.trigger_bindings(source, channel, number):
            self._trigger(trigger)

    def _trigger(self, trigger: TriggerBinding) -> None:
        if trigger.action == "slot":
            self.actions.trigger_slot(trigger.slot, trigger.side)
        elif trigger.action == "capture":
            log.info("MIDI capture: %s", self.actions.capture_input(None))
        else:
            self.actions.new_seed(trigger.side)

    def _program_channel_ok(self, channel: int) -> bool:
        wanted = self.actions.controller_map.program_channel
        return wanted is None or wanted == channel

    def _program_change(self, channel: int, program: int) -> None:
        if not self._program_channel_ok(channel):
            return
        programs = self.actions.controller_map.programs
        index = self._bank * 128 + program
        if index >= len(programs):
            allowed = f"a program in [0, {len(programs) - 1}] (the map's programs)" if programs \
                else "a controller map with a programs list"
            raise ParameterError("program", allowed, index)
        self.actions.load_preset(programs[index])
