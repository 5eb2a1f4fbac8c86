"""A MIDI input port (mido with python-rtmidi) that feeds a :class:`MidiMapper`.

By default a virtual input port is created, so that other programs connect to it: on Linux
through the JACK MIDI API (JACK port ``riff-bridge-midi:midi_in``; it works the same under
PipeWire's JACK), elsewhere through the platform API (CoreMIDI, ALSA sequencer, Windows MM).
``--midi NAME`` instead opens an existing port by its name (see ``riff-bridge control
--list-midi``). rtmidi calls the mapper from its own thread.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from bridge.control.midi_mapper import MidiMapper
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

CLIENT_NAME = "riff-bridge-midi"
PORT_NAME = "midi_in"
#: --midi-api choices -> rtmidi API names understood by mido's rtmidi backend.
APIS = {"jack": "UNIX_JACK", "alsa": "LINUX_ALSA", "coremidi": "MACOSX_CORE", "windows": "WINDOWS_MM"}


class MidiPortError(BridgeError):
    """The MIDI input could not be opened."""


def default_api() -> str:
    """``jack`` on Linux (the bridge's own world), the platform API elsewhere."""
    if sys.platform.startswith("linux"):
        return "jack"
    return "coremidi" if sys.platform == "darwin" else "windows"


def backend(api: str | None = None) -> Any:
    """The mido backend for ``api`` (a key of APIS; None: default_api())."""
    import mido

    api = api or default_api()
    if api not in APIS:
        raise MidiPortError(f"midi-api: expected one of {', '.join(APIS)}, got {api!r}")
    return mido.Backend(f"mido.backends.rtmidi/{APIS[api]}")


def input_names(api: str | None = None) -> list[str]:
    """Names of the existing MIDI outputs one can listen to (for ``--midi NAME``)."""
    try:
        return list(backend(api).get_input_names())
    except Exception as err:  # noqa: BLE001 - rtmidi reports failures as various errors
        raise MidiPortError(f"midi: cannot list ports with the {api or default_api()} API: {err}") from None


class MidiInput:
    """An open mido input whose messages go to ``mapper.handle``.

    ``name`` None opens a virtual input ``CLIENT_NAME:PORT_NAME``; otherwise the existing port
    of that name. Raises MidiPortError (naming the API and the available ports) on failure.
    """

    def __init__(self, mapper: MidiMapper, name: str | None = None, api: str | None = None,
                 client_name: str = CLIENT_NAME, port_name: str = PORT_NAME) -> None:
        self.mapper = mapper
        self.name = name
        self.api = api or default_api()
        self.client_name = client_name
        self.port_name = port_name
        self._port: Any = None

    @property
    def port_label(self) -> str:
        """What to connect to (virtual) or what was opened."""
        return f"{self.client_name}:{self.port_name}" if self.name is None else self.name

    def open(self) -> "MidiInput":
        """Open the port and start delivering messages."""
        if self._port is not None:
            return self
        try:
            self._port = self._open()
        except MidiPortError:
            raise
        except Exception as err:  # noqa: BLE001 - rtmidi raises OSError, SystemError, RuntimeError...
            raise MidiPortError(f"midi: cannot open {self.port_label!r} with the {self.api} API: {err}"
                                + self._hint()) from None
        log.info("MIDI input %s (%s API)", self.port_label, self.api)
        return self

    def _open(self) -> Any:
        midi = backend(self.api)
        if self.name is None:
            return midi.open_input(self.port_name, virtual=True, client_name=self.client_name,
                                   callback=self.mapper.handle)
        if self.name not in midi.get_input_names():
            raise MidiPortError(f"midi: expected one of {midi.get_input_names()}, got {self.name!r}")
        return midi.open_input(self.name, callback=self.mapper.handle)

    def _hint(self) -> str:
        return " (is a JACK or PipeWire-JACK server running?)" if self.api == "jack" else ""

    def close(self) -> None:
        """Close the port (idempotent)."""
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> "MidiInput":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
