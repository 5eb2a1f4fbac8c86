"""OSC messages to actions and replies: the server's logic, without sockets.

:class:`OscRouter` resolves an address through :mod:`bridge.control.namespace`, checks the
arguments, calls :class:`~bridge.control.actions.Actions` and sends replies through a
``send(destination, address, args)`` callable. Every failure becomes ``/riff/error
<address> <message>`` to the sender's reply address plus a warning in the log.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

from bridge import __version__
from bridge.control.actions import Actions
from bridge.control.learn import MidiLearn
from bridge.control.midi_map import CcBinding
from bridge.control.namespace import ERROR_ADDRESS, STATUS_ALIASES, STATUS_FIELDS, resolve
from bridge.control.packet import OscMessage
from bridge.control.subscriptions import Address, Subscriptions
from bridge.errors import BridgeError, ParameterError
from bridge.state import ControlState, ParameterSpec

log = logging.getLogger(__name__)

Send = Callable[[Address, str, Sequence[Any]], None]
#: Returns the live engine's status: keys of namespace.STATUS_FIELDS (missing keys read as 0).
StatusProvider = Callable[[], Mapping[str, Any]]

MAX_ERROR_CHARS = 500
MAX_LIST_BYTES = 8000
_FLAG = ParameterSpec("overwrite", "bool", "")
_PORT = ParameterSpec("port", "int", "", 0, 65535)
_SCOPE = ParameterSpec("scope", "choice", "", choices=("sender", "host"))
#: Senders whose own reply port is remembered (oldest forgotten first).
MAX_REPLY_PORTS = 1024


def reply_value(value: Any) -> Any:
    """A state value as sent over OSC (bool as 0/1)."""
    return int(value) if isinstance(value, bool) else value


def status_values(status: Mapping[str, Any]) -> list[Any]:
    """The ``/riff/get/status`` arguments in STATUS_FIELDS order.

    Each key is read under its own name, else its STATUS_ALIASES name (LiveMetrics), else 0
    (an empty string for a string field).
    """
    values: list[Any] = []
    for key, tag, _ in STATUS_FIELDS:
        raw = status.get(key, status.get(STATUS_ALIASES.get(key, key), "" if tag == "s" else 0))
        values.append(float(raw) if tag == "f" else str(raw) if tag == "s" else int(raw))
    return values


def _count(message: OscMessage, low: int, high: int) -> tuple[Any, ...]:
    """The arguments if there are ``low``..``high`` of them, else ParameterError."""
    count = len(message.args)
    if not low <= count <= high:
        wanted = f"exactly {low}" if low == high else f"{low} to {high}"
        raise ParameterError("arguments", f"{wanted} argument(s)", count)
    return message.args


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ParameterError(what, "a string", value)
    return value


#: Senders remembered for broadcast errors.
MAX_PEERS = 32


class OscRouter:
    """Dispatches decoded OSC messages; thread-safe (receive and scheduler threads call it)."""

    def __init__(self, actions: Actions, send: Send, status: StatusProvider | None = None,
                 learn: MidiLearn | None = None, version: str = __version__) -> None:
        self.actions = actions
        self.send = send
        self.status = status or (lambda: {"tempo": actions.store.snapshot().bpm})
        self.learn = learn
        self.version = version
        self.subscriptions = Subscriptions()
        self._reply_ports: OrderedDict[Address, int] = OrderedDict()
        self._host_ports: dict[str, int] = {}
        self._peers: OrderedDict[Address, None] = OrderedDict()
        self._unsubscribe = actions.store.subscribe(self._on_change)

    def close(self) -> None:
        """Stop listening to the state store."""
        self._unsubscribe()

    def reply_address(self, sender: Address) -> Address:
        """Where replies to ``sender`` go: the port that this sender (host and port) set with
        /riff/reply_port, else its host's ``host``-scoped port, else its own address."""
        port = self._reply_ports.get(sender) or self._host_ports.get(sender[0])
        return (sender[0], port) if port else (sender[0], sender[1])

    def handle(self, message: OscMessage, sender: Address) -> None:
        """Run one message; any failure is answered with /riff/error and logged."""
        self._remember(sender)
        try:
            route, name = resolve(message.address)
            if route.handler == "reply_port":  # keyed by the sender itself, not its reply address
                self._on_reply_port(message, self.reply_address(sender), name, sender)
            else:
                getattr(self, f"_on_{route.handler}")(message, self.reply_address(sender), name)
        except BridgeError as err:
            self.error(sender, message.address, str(err))
        except Exception as err:  # noqa: BLE001 - the server must keep serving
            log.exception("OSC %s failed", message.address)
            self.error(sender, message.address, f"internal error: {type(err).__name__}: {err}")

    def error(self, sender: Address, address: str, text: str) -> None:
        """Log a warning and send ``/riff/error address text`` to the sender's reply address."""
        log.warning("OSC %s from %s:%d: %s", address[:200], sender[0], sender[1], text)
        self.send(self.reply_address(sender), ERROR_ADDRESS, [address[:200], text[:MAX_ERROR_CHARS]])

    def broadcast_error(self, address: str, text: str) -> None:
        """Send ``/riff/error address text`` to every recent peer (errors with no one sender,
        such as a failed generation); logged by the caller."""
        for peer in list(self._peers):
            self.send(self.reply_address(peer), ERROR_ADDRESS, [address[:200], text[:MAX_ERROR_CHARS]])

    def _remember(self, sender: Address) -> None:
        """Keep the newest :data:`MAX_PEERS` senders for :meth:`broadcast_error`."""
        self._peers.pop(sender, None)
        self._peers[sender] = None
        while len(self._peers) > MAX_PEERS:
            self._peers.popitem(last=False)

    def tick_bar(self, bar: int) -> None:
        """Send ``/riff/bar bar`` to bar listeners."""
        for address in self.subscriptions.listeners("bar"):
            self.send(address, "/riff/bar", [int(bar)])

    def tick_beat(self, bar: int, beat: int) -> None:
        """Send ``/riff/beat bar beat`` to beat listeners."""
        for address in self.subscriptions.listeners("beat"):
            self.send(address, "/riff/beat", [int(bar), int(beat)])

    def _on_change(self, name: str, value: Any, state: ControlState) -> None:
        for address in self.subscriptions.listeners(name):
            self.send(address, f"/riff/get/{name}", [reply_value(value)])

    def _send_value(self, to: Address, name: str) -> None:
        self.send(to, f"/riff/get/{name}", [reply_value(getattr(self.actions.store.snapshot(), name))])

    # Handlers: one per namespace route, named _on_<route.handler>(message, reply_to, name).

    def _on_set(self, message: OscMessage, to: Address, name: str) -> None:
        self.actions.set(name, _count(message, 1, 1)[0])

    def _on_get(self, message: OscMessage, to: Address, name: str) -> None:
        _count(message, 0, 0)
        self._send_value(to, name)

    def _on_listen(self, message: OscMessage, to: Address, name: str) -> None:
        _count(message, 0, 0)
        self.subscriptions.add(name, to)
        self._send_value(to, name)

    def _on_unlisten(self, message: OscMessage, to: Address, name: str) -> None:
        _count(message, 0, 0)
        self.subscriptions.remove(name, to)

    def _on_get_all(self, message: OscMessage, to: Address, name: None) -> None:
        _count(message, 0, 0)
        for key, value in self.actions.store.snapshot().as_dict().items():
            self.send(to, f"/riff/get/{key}", [reply_value(value)])

    def _on_status(self, message: OscMessage, to: Address, name: None) -> None:
        _count(message, 0, 0)
        try:
            values = status_values(self.status())
        except Exception as err:  # noqa: BLE001 - a broken provider is reported, not fatal
            raise BridgeError(f"status: the live engine's status failed: {err}") from None
        self.send(to, "/riff/get/status", values)

    def _on_ping(self, message: OscMessage, to: Address, name: None) -> None:
        self.send(to, "/riff/pong", [self.version])

    def _on_listen_bar(self, message: OscMessage, to: Address, name: None) -> None:
        self.subscriptions.add("bar", to)

    def _on_unlisten_bar(self, message: OscMessage, to: Address, name: None) -> None:
        self.subscriptions.remove("bar", to)

    def _on_listen_beat(self, message: OscMessage, to: Address, name: None) -> None:
        self.subscriptions.add("beat", to)

    def _on_unlisten_beat(self, message: OscMessage, to: Address, name: None) -> None:
        self.subscriptions.remove("beat", to)

    def _on_reply_port(self, message: OscMessage, to: Address, name: None, sender: Address | None = None) -> None:
        args = _count(message, 1, 2)
        port = _PORT.coerce(args[0])  # whole floats too (Pd, TouchOSC)
        scope = _SCOPE.coerce(args[1]) if len(args) > 1 else "sender"
        sender = sender or to
        if scope == "host":
            self._set_port(self._host_ports, sender[0], port)
            return
        self._set_port(self._reply_ports, sender, port)
        while len(self._reply_ports) > MAX_REPLY_PORTS:
            self._reply_ports.popitem(last=False)

    @staticmethod
    def _set_port(table: Any, key: Any, port: int) -> None:
        table.pop(key, None)
        if port:
            table[key] = port

    def _on_preset_load(self, message: OscMessage, to: Address, name: None) -> None:
        preset = self.actions.load_preset(_text(_count(message, 1, 1)[0], "name"))
        self.send(to, "/riff/preset/loaded", [preset.name])

    def _on_preset_save(self, message: OscMessage, to: Address, name: None) -> None:
        args = _count(message, 1, 2)
        preset = _text(args[0], "name")
        self.actions.save_preset(preset, overwrite=_FLAG.coerce(args[1]) if len(args) > 1 else False)
        self.send(to, "/riff/preset/saved", [preset])

    def _on_preset_list(self, message: OscMessage, to: Address, name: None) -> None:
        names, size = [], 0
        for preset in self.actions.presets.names() if self.actions.presets else ():
            size += len(preset) + 8
            if size > MAX_LIST_BYTES:
                break
            names.append(preset)
        self.send(to, "/riff/preset/list", names)

    def _on_bank_trigger(self, message: OscMessage, to: Address, name: None) -> None:
        args = _count(message, 1, 2)
        self.actions.trigger_slot(args[0], args[1] if len(args) > 1 else "a")

    def _on_seed_new(self, message: OscMessage, to: Address, name: None) -> None:
        args = _count(message, 0, 1)
        self.actions.new_seed(args[0] if args else "a")

    def _on_midi_learn(self, message: OscMessage, to: Address, name: None) -> None:
        param = _text(_count(message, 1, 1)[0], "param")
        if self.learn is None:
            raise BridgeError("midi learn: no MIDI input is attached")

        def learned(binding: CcBinding, replaced: tuple[CcBinding, ...]) -> None:
            self.send(to, "/riff/midi/learned",
                      [binding.param, binding.channel or 0, binding.cc, *(b.param for b in replaced)])

        def failed(text: str) -> None:
            self.error(to, message.address, text)

        self.learn.arm(param, learned, failed)

    def _on_input_capture(self, message: OscMessage, to: Address, name: None) -> None:
        args = _count(message, 0, 1)
        path = self.actions.capture_input(_text(args[0], "name") if args else None)
        self.send(to, "/riff/input/captured", [str(path)])

    def broadcast(self, address: str, args: Sequence[Any]) -> None:
        """Send ``address args`` to every recent peer (news with no one sender)."""
        for peer in list(self._peers):
            self.send(self.reply_address(peer), address, list(args))

    def _on_midi_learn_cancel(self, message: OscMessage, to: Address, name: None) -> None:
        if self.learn is not None:
            self.learn.cancel()
