"""The JACK client: ports, callbacks, connections, and (optionally) timebase master.

Ports: ``out_L``/``out_R`` (audio out), ``midi_in`` (MIDI clock and control messages), and
with ``audio_in`` also ``in_L``/``in_R`` (registered for live audio-to-audio; not read yet).
The client follows the server's sample rate and block size through their callbacks, counts
xruns, and notices when the server shuts down (``shut_down``). All block work is done by
the :class:`~bridge.live.processor.Processor`; this class only wires it to JACK.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from bridge.errors import BridgeError
from bridge.live.processor import Processor
from bridge.live.timebase import (POSITION_BBT, POSITION_BBT_FRAME_OFFSET, TRANSPORT_ROLLING,
                                  TRANSPORT_STOPPED, Timebase)
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
        self.timebase: Timebase | None = None
        self.is_master = False
        self.shut_down = False
        self.client: Any = None
        self.processor: Processor | None = None

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
        if self.audio_in:
            self.client.inports.register("in_L")
            self.client.inports.register("in_R")

    def attach(self, processor: Processor, tempo: Tempo | None = None) -> None:
        """Install the callbacks, activate, take the timebase if asked, connect ports."""
        self.processor = processor
        client = self.client
        client.set_process_callback(self._process)
        client.set_xrun_callback(self._xrun)
        client.set_blocksize_callback(processor.set_block_size)
        client.set_samplerate_callback(self._samplerate)
        client.set_shutdown_callback(self._shutdown)
        client.activate()
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

    def reopen(self, processor: Processor, tempo: Tempo | None = None, timeout: float = 30.0,
               retry_seconds: float = 0.5) -> bool:
        """After the server went away: drop the dead client, then open, register and attach a
        new one (same name, ports, callbacks, connections) once a server answers again.

        Returns False when no server came back within ``timeout`` seconds (call again later).
        """
        import jack

        self.client, self.timebase, self.is_master = None, None, False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.open()
                self.attach(processor, tempo)
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
        if self.timebase is not None:
            self.timebase.request(tempo)

    # -- callbacks --------------------------------------------------------------------------

    def _process(self, frames: int) -> None:
        """JACK process callback (realtime thread).

        Contract: allocates no arrays of its own, takes no lock, logs nothing, never raises;
        it queries the transport (``transport_query_struct``, realtime safe), hands the port
        buffers and MIDI events to :meth:`Processor.process`, which only copies from
        preallocated buffers and counts underruns and callback time.
        """
        started = time.perf_counter_ns()
        client = self.client
        delay = client.frames_since_cycle_start
        state, pos = client.transport_query_struct()
        self.processor.process(frames, state, pos, self._midi.incoming_midi_events(),  # type: ignore[union-attr]
                               client.last_frame_time, self._left.get_array(), self._right.get_array(),
                               started, delay)

    def _timebase_callback(self, state: int, blocksize: int, pos: Any, new_pos: bool) -> None:
        """Timebase master callback (realtime thread): BBT of our own tempo for ``pos.frame``."""
        self.timebase.fill(pos, pos.frame)  # type: ignore[union-attr]

    def _xrun(self, delayed_usecs: float) -> None:
        self.processor.xruns += 1  # type: ignore[union-attr]

    def _samplerate(self, sample_rate: int) -> None:
        self.processor.set_sample_rate(sample_rate)  # type: ignore[union-attr]
        if self.timebase is not None:
            self.timebase.sample_rate = sample_rate

    def _shutdown(self, status: Any, reason: str) -> None:
        self.shut_down = True

    # -- setup ------------------------------------------------------------------------------

    def _take_timebase(self, tempo: Tempo) -> None:
        self.timebase = Timebase(tempo, self.sample_rate)
        self.is_master = bool(self.client.set_timebase_callback(self._timebase_callback, conditional=True))
        if not self.is_master:
            self.timebase = None
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


def _check_constants(jack: Any) -> None:
    """The realtime code's copies of JACK constants must match the library's."""
    expected = {"POSITION_BBT": POSITION_BBT, "ROLLING": TRANSPORT_ROLLING, "STOPPED": TRANSPORT_STOPPED}
    for name, value in expected.items():
        if int(getattr(jack, name)) != value:
            raise JackOutputError(f"JACK constant {name} is {int(getattr(jack, name))}, expected {value}")
    if int(jack.POSITION_BBT_FRAME_OFFSET) != POSITION_BBT_FRAME_OFFSET:
        raise JackOutputError("JACK constant POSITION_BBT_FRAME_OFFSET changed")
