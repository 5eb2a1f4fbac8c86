"""Link scenario run inside a private network namespace by tests/test_link_netns.py.

Never run it on a host network: Link announces itself by multicast. It starts a private jackd,
a Link peer process (tests/link_peer.py, 97 BPM, 4 beats per bar) and riff-bridge's Link
source (LinkBinding: a JACK client whose outputs feed system:playback, a control store with
a real OSC server), then:

1. follows the peer for a few bars;
2. the peer changes tempo mid-bar (131 BPM), riff-bridge follows for a few bars;
3. riff-bridge's tempo is set over OSC (/riff/set/bpm 88.5) and the peer is watched.

Every grid the source sends is logged, and so is every JACK cycle (frame counter and its
time, from the process callback as it runs), so the test can tell when a bar line frame was
actually played, and heard (plus the output latency), on JACK's clock. It prints one JSON
object (last stdout line) of raw measurements; the test checks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
PEER_BPM, CHANGED_BPM, OSC_BPM = 97.0, 131.0, 88.5


class Peer:
    """tests/link_peer.py as a child process, one JSON reply per command."""

    def __init__(self, bpm: float) -> None:
        self.process = subprocess.Popen([sys.executable, str(HERE / "link_peer.py"), str(bpm)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.process.stdout.readline())["ready"]  # type: ignore[union-attr]

    def ask(self, command: str) -> dict[str, Any]:
        self.process.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.process.stdout.readline())  # type: ignore[union-attr]

    def close(self) -> None:
        self.ask_quit()
        self.process.wait(5)

    def ask_quit(self) -> None:
        self.process.stdin.write("quit\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]


class GridRows:
    """A grid sink that logs every grid with the JACK time it was sent at."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def set_external_grid(self, bar: int, start: float, frames_per_bar: float, beats: int, bpm: float,
                          rolling: bool) -> None:
        with self.lock:
            self.rows.append({"t": self.clock.now_usecs(), "bar": bar, "start": start, "fpb": frames_per_bar,
                              "bpm": bpm})

    def clear_external_grid(self) -> None:
        pass

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows


class CycleLog:
    """JACK's own account of its cycles, logged as they happen (a thread polling
    ``jack_get_cycle_times`` every millisecond; no Python process callback to load the graph):
    frame counter, wake-up time, next wake-up time. A frame's JACK time is then read from the
    cycle it fell in: measured, not predicted.

    A reading that fails is counted (``errors``, ``first_error``) and polling goes on: a log
    that stopped at its first failure would leave every later clip start unmeasured."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.rows: list[list[int]] = []
        self.errors = 0
        self.first_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "CycleLog":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            try:
                cycle = self.clock.cycle()
            except Exception as err:  # noqa: BLE001 - counted and reported in the scenario's output
                self.errors += 1
                self.first_error = self.first_error or repr(err)
                continue
            if not self.rows or cycle.frames != self.rows[-1][0]:
                self.rows.append([cycle.frames, cycle.usecs, cycle.next_usecs])

    def dump(self) -> list[list[int]]:
        self._stop.set()
        self._thread.join()
        return self.rows

    def report(self) -> dict[str, Any]:
        """How the log went: rows, the JACK frames it spans, failed readings."""
        span = [self.rows[0][0], self.rows[-1][0]] if self.rows else []
        return {"rows": len(self.rows), "frames": span, "errors": self.errors, "first_error": self.first_error}


def wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def sleep_to_mid_bar(peer: Peer) -> None:
    """Sleep until the middle of one of the peer's bars (its clock is CLOCK_MONOTONIC_RAW)."""
    report = peer.ask("bars 1")
    start, end = report["bar_times"][1], report["bar_times"][2]
    middle = (start + end) / 2
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW) / 1000
    target = middle if middle > now else middle + (end - start)
    time.sleep((target - now) / 1e6)


def osc_status(port: int) -> list[Any]:
    """``/riff/get/status`` over UDP from a socket of ours."""
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(OscMessageBuilder("/riff/get/status").build().dgram, ("127.0.0.1", port))
        return list(OscMessage(sock.recv(4096)).params)


def osc_set(port: int, name: str, value: float) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    SimpleUDPClient("127.0.0.1", port).send_message(f"/riff/set/{name}", float(value))


def run(out: dict[str, Any]) -> None:
    import jack

    from bridge.control.surfaces import ControlSurfaces
    from bridge.live.jacktime import JackClock, clock_offset
    from bridge.live.link import LinkOptions
    from bridge.live.linkbinding import LinkBinding
    from bridge.live.server import JackServer
    from bridge.state import StateStore

    out["interfaces"] = [name for _, name in socket.if_nameindex()]
    with JackServer(period=256) as server:
        os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        peer = Peer(PEER_BPM)
        time.sleep(2.0)  # the peer's session is the older one: riff-bridge joins it
        client = jack.Client("riff-link", no_start_server=True)
        ports = [client.outports.register("out_L"), client.outports.register("out_R")]
        clock = JackClock(client)
        client.activate()
        cycles = CycleLog(clock).start()
        for port, target in zip(ports, ("system:playback_1", "system:playback_2")):
            client.connect(port, target)
        time.sleep(0.2)
        out["latency_frames"] = clock.playback_latency(ports).max
        out["block"] = client.blocksize
        log = GridRows(clock)
        store = StateStore()
        store.set("bpm", 120.0)
        binding = LinkBinding(store, SimpleNamespace(client=client), log, LinkOptions(commit_tempo=True))
        surfaces = ControlSurfaces(store, status=binding.status, osc_port=0, midi=None)
        with surfaces, binding:
            port = surfaces.osc.address[1]
            out["joined"] = wait(lambda: binding.status().get("link_peers") == 1
                                 and abs(binding.status().get("link_bpm", 0) - PEER_BPM) < 1e-3, 10)
            out["offset_peer_clock_us"] = clock_offset(clock.now_usecs,
                                                        lambda: int(peer.ask("status")["micros"]))[0]
            out["status_osc"] = osc_status(port)
            log.take()
            time.sleep(4 * 4 * 60 / PEER_BPM)
            out["follow"] = {"grids": log.take(), "peer": peer.ask("bars 8")}
            sleep_to_mid_bar(peer)
            change = peer.ask(f"tempo {CHANGED_BPM}")
            time.sleep(3 * 4 * 60 / CHANGED_BPM)
            out["change"] = {"at": change["micros"], "grids": log.take(), "peer": peer.ask("bars 8")}
            sent = clock.now_usecs()
            osc_set(port, "bpm", OSC_BPM)
            seen = wait(lambda: abs(peer.ask("status")["tempo"] - OSC_BPM) < 1e-3, 2 * 4 * 60 / CHANGED_BPM + 2)
            out["osc_tempo"] = {"sent": sent, "seen": seen, "seen_after_s": (clock.now_usecs() - sent) / 1e6,
                                "before": out["change"]["peer"], "after": peer.ask("bars 8")}
            time.sleep(0.5)
            out["osc_tempo"]["grids"] = log.take()[-5:]
            out["errors"] = binding.source.errors if binding.source else -1
        peer.close()
        client.deactivate()
        out["cycles"] = cycles.dump()
        out["cycle_log"] = cycles.report()
        client.close()
        out["jack_xruns"] = server.xrun_causes()


def main(scenario: Callable[[dict[str, Any]], None]) -> int:
    """Run ``scenario`` and print what it recorded as one JSON line (with ``exception`` when it
    failed part way: the test shows it)."""
    out: dict[str, Any] = {}
    try:
        scenario(out)
    except Exception as err:
        import traceback

        out["exception"] = "".join(traceback.format_exception(err))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(run))
