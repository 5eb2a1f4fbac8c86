"""``riff-bridge serve`` end to end, as a musician runs it: a fresh config, a private JACK
server that dies and comes back, OSC and JACK MIDI control, injected generation faults, and a
clean shutdown that keeps every file the user made."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.live.server import JackServer
from control_fixtures import OscPeer

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOG: list[str] = []


def _tail() -> str:
    return "; serve output:\n" + "".join(LOG[-40:])


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}{_tail()}"
        time.sleep(0.1)


class MidiSender:
    """A JACK client with a MIDI out port; ``send`` queues bytes for its next cycle."""

    def __init__(self, target: str, server: str) -> None:
        import jack

        self.client = jack.Client("e2e-midi", no_start_server=True, servername=server)
        self.port = self.client.midi_outports.register("out")
        self.pending: list[bytes] = []
        self.lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(self.port, target)

    def _process(self, frames: int) -> None:
        self.port.clear_buffer()
        if self.lock.acquire(blocking=False):
            for data in self.pending:
                self.port.write_midi_event(0, data)
            self.pending.clear()
            self.lock.release()

    def send(self, data: bytes) -> None:
        with self.lock:
            self.pending.append(data)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _roll(server: str) -> None:
    """Start the transport, as the DAW's play button would."""
    import jack

    with jack.Client("e2e-transport", no_start_server=True, servername=server) as client:
        client.transport_start()


def _status(peer: OscPeer) -> dict[str, Any]:
    from bridge.control.namespace import STATUS_FIELDS

    peer.drain(0.05)
    peer.send("/riff/get/status")
    for _ in range(50):
        message = peer.recv(3.0)
        if message.address == "/riff/get/status":
            return dict(zip([field[0] for field in STATUS_FIELDS], message.args))
    raise AssertionError("no status reply")


def _get(peer: OscPeer, name: str) -> Any:
    peer.drain(0.05)
    peer.send(f"/riff/get/{name}")
    for _ in range(50):
        message = peer.recv(3.0)
        if message.address == f"/riff/get/{name}":
            return message.args[0]
    raise AssertionError(f"no reply for {name}")


def test_serve_survives_jack_restart_and_faults_and_shuts_down_cleanly(tmp_path: Path, tiny_model_dir: Path) -> None:
    server = JackServer(name=f"e2e-{os.getpid()}").start()
    port = _free_udp_port()
    user = tmp_path / "user-presets"
    user.mkdir()
    mine = user / "mine.toml"
    mine.write_text('[parameters]\nprompt_a = "my own sound"\nprompt_b = "my own sound"\n')
    config = tmp_path / "serve.toml"
    config.write_text(f'[serve]\nmodel = "{tiny_model_dir}"\nbars = 1\nsteps = 4\nosc-port = {port}\n'
                      f'midi = "none"\ntimebase-master = true\nrecord = "{tmp_path / "rec"}"\n'
                      f'inject-faults = 3\npresets-dir = "{user}"\n')
    env = {**server.env(), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = LOG
    lines.clear()
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    peer = OscPeer(("127.0.0.1", port))
    midi = None
    try:
        _wait(lambda: any("OSC: udp://127.0.0.1" in line for line in lines), 120, "serve to start")
        _roll(server.name)
        peer.send("/riff/ping")
        assert peer.expect("/riff/pong").args
        # OSC control
        peer.send("/riff/set/prompt_b", "glassy arpeggio")
        assert _get(peer, "prompt_b") == "glassy arpeggio"
        peer.send("/riff/set/alpha", 0.3)
        assert _get(peer, "alpha") == pytest.approx(0.3)
        peer.send("/riff/set/alpha", 7.0)
        assert any(m.address == "/riff/error" for m in peer.drain(0.5))
        assert _get(peer, "alpha") == pytest.approx(0.3)
        # JACK MIDI control: knob 1 of the default controller map is alpha
        midi = MidiSender("riff-bridge:midi_in", server.name)
        midi.send(bytes([0xB0, 21, 127]))
        _wait(lambda: _get(peer, "alpha") == pytest.approx(1.0), 10, "MIDI CC to reach alpha")
        # one prompt again: the stream walks seeds, a new clip every loop
        peer.send("/riff/set/prompt_b", _get(peer, "prompt_a"))
        # faults are injected every 3rd generation: reported and survived
        _wait(lambda: _status(peer)["clips_generated"] >= 4, 90, "clips to be generated")
        errors = [m for m in peer.drain(0.5) if m.address == "/riff/error" and m.args[0] == "/riff/generate"]
        # the JACK server dies and comes back
        midi.close()
        midi = None
        server.stop()
        time.sleep(1.0)
        server.start()
        _wait(lambda: any("reconnected" in line for line in lines), 60, "the JACK client to reconnect")
        _roll(server.name)
        played = _status(peer)["clips_generated"]
        _wait(lambda: _status(peer)["clips_generated"] > played + 1, 90, "clips after the restart")
        # a preset saved during the session, then a clean shutdown
        peer.send("/riff/preset/save", "session-end")
        _wait(lambda: (user / "session-end.toml").exists(), 5, "the preset to be saved")
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - began < 2.0
    finally:
        if midi is not None:
            midi.close()
        if proc.poll() is None:
            proc.kill()
        peer.close()
        server.stop()
    output = "".join(lines)
    assert "injected" in output and ("non-finite" in output or "out-of-memory" in output), output[-3000:]
    assert errors or "generation failed" in output
    assert mine.read_text().startswith('[parameters]\nprompt_a = "my own sound"')
    recorded = sorted((tmp_path / "rec").glob("*.wav"))
    assert len(recorded) >= 3 and len({p.name for p in recorded}) == len(recorded)
    assert len(list((tmp_path / "rec").glob("*.png"))) == len(recorded)
