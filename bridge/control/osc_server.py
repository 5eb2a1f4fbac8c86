"""The OSC UDP server: one blocking receive thread, a scheduler thread, replies to senders.

Why not python-osc's servers: its ThreadingOSCUDPServer dropped ~90% of an unpaced burst
here, and its parser lets some malformed packets through half-handled. This server reads
the socket in one thread (with a 4 MiB SO_RCVBUF so bursts queue in the kernel), parses
every datagram with :func:`bridge.control.packet.parse_datagram`, runs immediate messages
at once and hands future-timetagged bundles to a :class:`~bridge.control.scheduler.Scheduler`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from bridge.control.actions import Actions
from bridge.control.learn import MidiLearn
from bridge.control.namespace import ERROR_ADDRESS
from bridge.control.osc_router import OscRouter, StatusProvider
from bridge.control.packet import IMMEDIATELY, OscMessage, PacketError, encode_message, parse_datagram
from bridge.control.scheduler import Scheduler
from bridge.control.subscriptions import Address
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
RCVBUF_BYTES = 4 * 1024 * 1024
MAX_DATAGRAM = 65535
POLL_SECONDS = 0.2


@dataclass
class OscStats:
    """Counters since start (read them for tests and status; written by the server threads)."""

    datagrams: int = 0
    messages: int = 0
    errors: int = 0  # /riff/error replies sent
    scheduled: int = 0
    send_failures: int = 0


class OscServer:
    """``/riff/...`` over UDP on ``host:port`` (port 0 picks a free one; see ``address``).

    ``start`` binds and starts the threads (BridgeError when the port is taken); ``stop``
    joins them. ``notify_bar``/``notify_beat`` come from the live engine (from a normal
    thread, not the JACK process callback): they release quantized changes, then send ticks.
    """

    def __init__(self, actions: Actions, status: StatusProvider | None = None,
                 learn: MidiLearn | None = None, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, rcvbuf: int = RCVBUF_BYTES) -> None:
        self.actions = actions
        self.host, self.port, self.rcvbuf = host, port, rcvbuf
        self.router = OscRouter(actions, self.send, status, learn)
        self.scheduler = Scheduler()
        self.stats = OscStats()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    @property
    def address(self) -> Address:
        """The bound (host, port); before ``start``, the configured ones."""
        if self._sock is None:
            return (self.host, self.port)
        host, port = self._sock.getsockname()[:2]
        return (host, port)

    def start(self) -> "OscServer":
        """Bind the socket and start the receive and scheduler threads."""
        if self._sock is not None:
            return self
        self._sock = self._bind()
        self._running.set()
        self.scheduler.start()
        self._thread = threading.Thread(target=self._serve, name="riff-osc-receive", daemon=True)
        self._thread.start()
        log.info("OSC listening on udp://%s:%d", *self.address)
        return self

    def _bind(self) -> socket.socket:
        try:
            family, _, _, _, where = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind(where)
        except OSError as err:
            raise BridgeError(f"osc-port: cannot listen on udp://{self.host}:{self.port} ({err}); "
                              "pass another --osc-port/--osc-host") from None
        sock.settimeout(POLL_SECONDS)
        return sock

    def stop(self) -> None:
        """Stop serving; pending scheduled bundles are dropped."""
        self._running.clear()
        if self._thread is not None:
            self._wake()
            self._thread.join(2.0)
            self._thread = None
        self.scheduler.stop()
        self.router.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _wake(self) -> None:
        """Unblock the receive thread with an empty datagram to ourselves (else it waits POLL_SECONDS)."""
        try:
            self._sock.sendto(b"", self._sock.getsockname())  # type: ignore[union-attr]
        except OSError:
            pass

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(self, to: Address, address: str, args: Sequence[Any] = ()) -> None:
        """Send one message from the server's socket; failures are counted and logged, never raised."""
        sock = self._sock
        if address == ERROR_ADDRESS:
            self.stats.errors += 1
        if sock is None:
            return
        try:
            sock.sendto(encode_message(address, list(args)), to)
        except (OSError, ValueError, OverflowError) as err:
            self.stats.send_failures += 1
            log.debug("OSC send %s to %s failed: %s", address, to, err)

    def notify_bar(self, bar: int) -> None:
        """A bar line: apply held (quantized) changes, then send ``/riff/bar`` to listeners."""
        self.actions.quantizer.notify_bar(bar)
        self.router.tick_bar(bar)

    def notify_beat(self, bar: int, beat: int) -> None:
        """A beat: apply held changes in beat mode, then send ``/riff/beat`` to listeners."""
        self.actions.quantizer.notify_beat(bar, beat)
        self.router.tick_beat(bar, beat)

    def detach_clock(self) -> None:
        """The live engine stopped ticking: apply held changes, and apply new ones at once."""
        self.actions.quantizer.detach_clock()

    def _serve(self) -> None:
        while self._running.is_set():
            try:
                data, sender = self._sock.recvfrom(MAX_DATAGRAM)  # type: ignore[union-attr]
            except socket.timeout:
                continue
            except OSError as err:  # e.g. ICMP "port unreachable" from an earlier reply
                log.debug("OSC receive: %s", err)
                continue
            if not self._running.is_set():
                break
            self.handle_datagram(data, (sender[0], sender[1]))

    def handle_datagram(self, data: bytes, sender: Address) -> None:
        """Parse and run (or schedule) one datagram from ``sender``; never raises."""
        self.stats.datagrams += 1
        try:
            messages = parse_datagram(data)
        except PacketError as err:
            self._error(sender, err.address, str(err))
            return
        for message in messages:
            self.stats.messages += 1
            self._dispatch(message, sender)

    def _dispatch(self, message: OscMessage, sender: Address) -> None:
        if message.timetag == IMMEDIATELY or message.timetag <= time.time():
            self._run(message, sender)
            return
        try:
            self.scheduler.schedule(message.timetag, lambda: self._run(message, sender))
            self.stats.scheduled += 1
        except BridgeError as err:
            self._error(sender, message.address, str(err))

    def _run(self, message: OscMessage, sender: Address) -> None:
        self.router.handle(message, sender)

    def _error(self, sender: Address, address: str, text: str) -> None:
        self.router.error(sender, address, text)
