"""Real OSC peers: liblo's oscsend sets and gets every parameter; oscdump receives the replies."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from control_fixtures import sample_value, wait_until

from bridge import __version__
from bridge.state import PARAMETERS

pytestmark = pytest.mark.skipif(not (shutil.which("oscsend") and shutil.which("oscdump")),
                                reason="liblo-tools (oscsend, oscdump) not installed")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Dump:
    """``oscdump -L PORT`` writing to a file; ``lines()`` parses what it printed."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_udp_port()
        self.path = folder / "oscdump.txt"
        self.out = self.path.open("w")
        self.process = subprocess.Popen(["oscdump", "-L", str(self.port)], stdout=self.out,
                                        stderr=subprocess.STDOUT)
        time.sleep(0.2)

    def lines(self) -> list[tuple[str, str, list[str]]]:
        """(address, types, values) per received message."""
        parsed = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            _, address, types, *values = shlex.split(line)
            parsed.append((address, types, values))
        return parsed

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, str, list[str]]]:
        assert wait_until(lambda: len(self.lines()) >= count, timeout), self.path.read_text()
        return self.lines()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        self.out.close()


@pytest.fixture
def dump(tmp_path: Path) -> Iterator[Dump]:
    listener = Dump(tmp_path)
    yield listener
    listener.close()


def oscsend(port: int, address: str, *typed: tuple[str, Any]) -> None:
    """Run liblo's oscsend with (type, value) arguments."""
    types = "".join(tag for tag, _ in typed)
    values = [str(value) for tag, value in typed if tag not in "TFN"]
    command = ["oscsend", "localhost", str(port), address] + ([types] + values if typed else [])
    subprocess.run(command, check=True, timeout=10)


def _typed(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("T" if value else "F", value)
    if isinstance(value, int):
        return ("i" if value < 2**31 else "h", value)
    if isinstance(value, float):
        return ("f", value)
    return ("s", value)


def _decode(types: str, text: str) -> Any:
    return float(text) if types == "f" else int(text) if types in "ih" else text


def test_oscsend_sets_and_gets_every_parameter(surfaces: Any, dump: Dump) -> None:
    port = surfaces.osc.address[1]
    oscsend(port, "/riff/reply_port", ("i", dump.port), ("s", "host"))  # one-shot sender: host scope
    oscsend(port, "/riff/ping")
    assert dump.wait_for(1)[0] == ("/riff/pong", "s", [__version__])
    for name in PARAMETERS:
        oscsend(port, f"/riff/set/{name}", _typed(sample_value(name)))
        oscsend(port, f"/riff/get/{name}")
    replies = dump.wait_for(1 + len(PARAMETERS))[1:]
    assert [address for address, _, _ in replies] == [f"/riff/get/{n}" for n in PARAMETERS]
    for (address, types, values), name in zip(replies, PARAMETERS):
        expected = sample_value(name)
        got = _decode(types, values[0])
        assert got == (pytest.approx(expected, rel=1e-6) if isinstance(expected, float) else expected)
        assert getattr(surfaces.store.snapshot(), name) == expected


def test_oscsend_errors_reach_oscdump(surfaces: Any, dump: Dump) -> None:
    port = surfaces.osc.address[1]
    oscsend(port, "/riff/reply_port", ("i", dump.port), ("s", "host"))  # one-shot sender: host scope
    oscsend(port, "/riff/set/alpha", ("s", "loud"))
    oscsend(port, "/riff/set/steps", ("f", 2.5))
    oscsend(port, "/riff/set/mute", ("N", None))
    oscsend(port, "/riff/nothing/here", ("i", 1))
    errors = dump.wait_for(4)
    assert [e[0] for e in errors] == ["/riff/error"] * 4
    assert [e[2][0] for e in errors] == ["/riff/set/alpha", "/riff/set/steps", "/riff/set/mute",
                                         "/riff/nothing/here"]
    assert "alpha: expected a number in [0, 1], got 'loud'" == errors[0][2][1]
    assert surfaces.store.snapshot().alpha == 0.0


def test_oscdump_listens_to_changes_and_bars(surfaces: Any, dump: Dump) -> None:
    port = surfaces.osc.address[1]
    oscsend(port, "/riff/reply_port", ("i", dump.port), ("s", "host"))  # one-shot sender: host scope
    oscsend(port, "/riff/listen/volume")
    oscsend(port, "/riff/listen/bar")
    dump.wait_for(1)
    oscsend(port, "/riff/set/volume", ("f", 0.5))
    # the change is told from the OSC server's thread once the store holds it: wait for that
    # message before the bar, which this thread sends at once (their order is not a contract)
    lines = dump.wait_for(2)
    assert lines[1][0] == "/riff/get/volume" and float(lines[1][2][0]) == 0.5
    assert surfaces.store.snapshot().volume == 0.5
    surfaces.notify_bar(8)
    lines = dump.wait_for(3)
    assert lines[2] == ("/riff/bar", "i", ["8"])
