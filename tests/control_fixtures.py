"""Fixtures of the control surfaces: a state store, preset folders, a running OSC server and a UDP peer."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest


class OscPeer:
    """A UDP OSC peer on loopback: ``send`` to the server, ``recv``/``expect`` its replies."""

    def __init__(self, server: tuple[str, int], rcvbuf: int = 4 * 1024 * 1024) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()

    def send(self, address: str, *args: Any) -> None:
        """Send one message built by our encoder."""
        from bridge.control.packet import encode_message

        self.sock.sendto(encode_message(address, list(args)), self.server)

    def send_raw(self, data: bytes) -> None:
        """Send a datagram as is."""
        self.sock.sendto(data, self.server)

    def recv(self, timeout: float = 2.0) -> Any:
        """The next reply as an OscMessage; raises socket.timeout."""
        from bridge.control.packet import parse_datagram

        self.sock.settimeout(timeout)
        return parse_datagram(self.sock.recv(65536))[0]

    def expect(self, address: str, timeout: float = 2.0) -> Any:
        """The next reply, which must have ``address``."""
        message = self.recv(timeout)
        assert message.address == address, message
        return message

    def drain(self, timeout: float = 0.2) -> list[Any]:
        """All replies that arrive until ``timeout`` passes without one."""
        out = []
        try:
            while True:
                out.append(self.recv(timeout))
        except socket.timeout:
            return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def user_presets(tmp_path: Path) -> Path:
    """An empty user presets folder."""
    folder = tmp_path / "user-presets"
    folder.mkdir()
    return folder


@pytest.fixture
def preset_store(user_presets: Path) -> "object":
    """A PresetStore over the repository's factory presets and an empty user folder."""
    from bridge.control.presets import PresetStore

    return PresetStore(user_presets)


@pytest.fixture
def surfaces(preset_store: Any) -> Iterator[Any]:
    """ControlSurfaces on a free loopback UDP port, no MIDI port, generic controller map."""
    from bridge.control.surfaces import ControlSurfaces
    from bridge.state import StateStore

    status = {"tempo": 121.5, "bar": 17, "clips_generated": 9, "last_generation_s": 1.25,
              "late_clips": 1, "xruns": 2}
    controls = ControlSurfaces(StateStore(), status=lambda: status, presets=preset_store,
                               osc_port=0, controller="generic-8knob")
    controls.start()
    yield controls
    controls.stop()


@pytest.fixture
def peer(surfaces: Any) -> Iterator[OscPeer]:
    """An OscPeer talking to :func:`surfaces`' OSC server."""
    client = OscPeer(surfaces.osc.address)
    yield client
    client.close()


def wait_until(predicate: Any, timeout: float = 3.0, step: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout``; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def sample_value(name: str) -> Any:
    """A valid, non-default value for parameter ``name`` that survives float32 (derived from its spec)."""
    from bridge.state import PARAMETERS

    spec = PARAMETERS[name]
    if spec.kind == "str":
        return f"test {name} ü"
    if spec.kind == "int":
        return int(spec.high)  # seeds: 2**32 - 1 travels as int64
    if spec.kind == "float":
        return (spec.low + spec.high) / 2
    if spec.kind == "bool":
        return True
    return spec.choices[-1]


def wrong_values(name: str) -> list[Any]:
    """Values parameter ``name`` must refuse: wrong type and out of range."""
    from bridge.state import PARAMETERS

    spec = PARAMETERS[name]
    if spec.kind == "str":
        return [5, 1.5, b"blob", None, "x" * 1001]
    if spec.kind in ("int", "float"):
        wrong = ["text", None, b"blob", spec.high + 1, spec.low - 1, float("nan"), float("inf")]
        return wrong + ([spec.low + 0.5] if spec.kind == "int" else [])
    if spec.kind == "bool":
        return [2, "maybe", None, 0.5]
    return ["nope", 1, None]
