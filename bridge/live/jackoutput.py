"""The JACK client: ports, callbacks, connections, and (optionally) timebase master.

Ports: ``out_L``/``out_R`` (audio out), ``midi_in`` (MIDI clock and control messages), and
with ``audio_in`` also ``in_L``/``in_R`` (captured by the core with their JACK frames).
JACK-Client opens the client, ports and connections; the process, xrun and timebase
callbacks are the native core's C functions (:meth:`Core.attach <bridge.live.core.Core.attach>`),
so no Python runs in JACK's realtime thread. Python callbacks remain only for the server's
notifications (sample rate, block size, shutdown), which JACK delivers on its own
non-realtime thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from bridge.errors import BridgeError
from bridge.live.core import Core
from bridge.live.timebase import (POSITION_BBT, POSITION_BBT_FRAME_OFFSET, TRANSPORT_ROLLING,
                                  TRANSPORT_STOPPED)
from bridge.timing import Tempo

log = logging.getLogger(__name__)


class JackOutputError(BridgeError):
    """The JACK client could not be opened, activated or connected."""


class JackOutput:
    """riff-bridge's JACK client (see the module docstring).

    ``name``: client name (``riff-bridge``); ``servername``: JACK server (None: the default,
    i.e. ``$JACK_DEFAULT_SERVER``); ``connect``: destinations for ``out_L``/``out_R`` (port
    names, or client names meaning that client's audio inputs); ``midi_from``: MIDI ports to
    connect to ``midi_in``; ``timebase_master``: become timebase master when there is none.
    """

    def __init__(self, name: str = "riff-bridge", servername: str | None = None, audio_in: bool = False,
                 connect: Sequence[str] = (), midi_from: Sequence[str] = (),
                 timebase_master: bool = False) -> None:
        self.name, self.servername, self.audio_in = name, servername, audio_in
        self.connect_to, self.midi_from = tuple(connect), tuple(midi_from)
        self.timebase_master = timebase_master
        self.is_master = False
        self.shut_down = False
        self.client: Any = None
        self.core: Core | None = None
        self.block_size_seen = 0

    @property
    def sample_rate(self) -> int:
        """The server's sample rate."""
        return int(self.client.samplerate)

    @property
    def block_size(self) -> int:
        """The server's block size."""
        return int(self.client.blocksize)

    def open(self) -> None:
        """Open the client and register its ports (not active yet); raises JackOutputError."""
        import jack

        _check_constants(jack)
        try:
            self.client = jack.Client(self.name, no_start_server=True, servername=self.servername)
        except (jack.JackError, jack.JackOpenError) as err:
            raise JackOutputError(f"cannot open JACK client {self.name!r}: {err} (is a JACK server running?)") from None
        self._left = self.client.outports.register("out_L")
        self._right = self.client.outports.register("out_R")
        self._midi = self.client.midi_inports.register("midi_in")
        self._inputs = None
        if self.audio_in:
            self._inputs = (self.client.inports.register("in_L"), self.client.inports.register("in_R"))

    def attach(self, core: Core, tempo: Tempo | None = None) -> None:
        """Register the core's callbacks, activate, take the timebase if asked, connect ports."""
        self.core = core
        client = self.client
        core.attach(client, (self._left, self._right), self._midi, self._inputs)
        client.set_blocksize_callback(self._blocksize)
        client.set_samplerate_callback(self._samplerate)
        client.set_shutdown_callback(self._shutdown)
        client.activate()
        self.block_size_seen = int(client.blocksize)
        if self.timebase_master:
            self._take_timebase(tempo or Tempo())
        self._connect()

    def close(self) -> None:
        """Give up the timebase, deactivate and close the client (idempotent)."""
        client = self.client
        if client is None:
            return
        if self.is_master:
            try:
                client.release_timebase()
            except Exception as err:  # server may be gone
                log.debug("release_timebase: %s", err)
        client.deactivate()
        client.close()
        self.client = None

    def reopen(self, core: Core, tempo: Tempo | None = None, timeout: float = 30.0,
               retry_seconds: float = 0.5) -> bool:
        """After the server went away: drop the dead client, then open, register and attach a
        new one (same name, ports, callbacks, connections) once a server answers again.

        Returns False when no server came back within ``timeout`` seconds (call again later).
        """
        import jack

        _abandon(self.client)
        self.client, self.is_master = None, False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.open()
                self.attach(core, tempo)
                self.shut_down = False
                return True
            except (JackOutputError, jack.JackError) as err:
                log.debug("JACK not back yet: %s", err)
                if self.client is not None:
                    self.client = None
                time.sleep(retry_seconds)
        return False

    def request_tempo(self, tempo: Tempo) -> None:
        """New tempo for our timebase (when we are master), from its next bar line."""
        if self.is_master and self.core is not None:
            self.core.send("TIMEBASE", a=tempo.bpm, b=tempo.meter.beats_per_bar, c=tempo.meter.beat_unit)

    # -- notifications (JACK's non-realtime thread) ------------------------------------------

    def _blocksize(self, frames: int) -> None:
        self.block_size_seen = frames

    def _samplerate(self, sample_rate: int) -> None:
        if self.core is not None:
            self.core.set_sample_rate(sample_rate)

    def _shutdown(self, status: Any, reason: str) -> None:
        self.shut_down = True

    # -- setup ------------------------------------------------------------------------------

    def _take_timebase(self, tempo: Tempo) -> None:
        meter = tempo.meter
        self.is_master = self.core.take_timebase(tempo.bpm, meter.beats_per_bar, meter.beat_unit)  # type: ignore[union-attr]
        if not self.is_master:
            log.warning("another client is JACK timebase master; following it instead")

    def _connect(self) -> None:
        destinations = self._destinations()
        if destinations:
            pairs = zip((self._left, self._right), destinations * (2 if len(destinations) == 1 else 1))
            for source, destination in pairs:
                self._link(source, destination)
        for source in self.midi_from:
            self._link(source, self._midi)

    def _destinations(self) -> list[str]:
        names: list[str] = []
        for target in self.connect_to:
            if ":" in target:
                names.append(target)
                continue
            ports = self.client.get_ports(f"^{target}:", is_audio=True, is_input=True)
            if not ports:
                raise JackOutputError(f"--connect {target!r}: no such port or client with audio inputs")
            names.extend(port.name for port in ports)
        return names

    def _link(self, source: Any, destination: Any) -> None:
        try:
            self.client.connect(source, destination)
        except Exception as err:
            raise JackOutputError(f"cannot connect {getattr(source, 'name', source)} to "
                                  f"{getattr(destination, 'name', destination)}: {err}") from None


#: Clients whose server died: never closed (libjack crashes closing them, also from
#: JACK-Client's ``__del__``), kept with their handle cleared. A few bytes per server restart.
_DEAD_CLIENTS: list[Any] = []


def _abandon(client: Any) -> None:
    """Drop a client whose server is gone without calling jack_client_close on it."""
    if client is None:
        return
    import jack

    client._ptr = jack._ffi.NULL
    _DEAD_CLIENTS.append(client)


def _check_constants(jack: Any) -> None:
    """The realtime code's copies of JACK constants must match the library's."""
    expected = {"POSITION_BBT": POSITION_BBT, "ROLLING": TRANSPORT_ROLLING, "STOPPED": TRANSPORT_STOPPED}
    for name, value in expected.items():
        if int(getattr(jack, name)) != value:
            raise JackOutputError(f"JACK constant {name} is {int(getattr(jack, name))}, expected {value}")
    if int(jack.POSITION_BBT_FRAME_OFFSET) != POSITION_BBT_FRAME_OFFSET:
        raise JackOutputError("JACK constant POSITION_BBT_FRAME_OFFSET changed")
