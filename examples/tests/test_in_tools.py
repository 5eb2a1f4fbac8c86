"""Every example run in its real tool, headless, against a running ``riff-bridge control``
(``make test-examples``; the tools come from ``scripts/examples-setup.sh``).

Each test copies the example with the control server's port in place of 9000 (and free ports
for the replies), runs it as a user would (``pd -nogui``, ``sclang``, ``ghci`` with Tidal,
``sonic-pi-server`` with the code sent as ``/run-code``), and checks on the server that the
parameters the example claims to set arrive, and (where the example listens) that replies
reach the tool while another client on the same host keeps its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree

import pytest

from bridge.control.packet import encode_message, parse_datagram

EXAMPLES = Path(__file__).resolve().parents[1]
REPO = EXAMPLES.parent
WATCHED = ("prompt_a", "prompt_b", "seed_a", "seed_b", "alpha", "bpm", "quantize", "guidance", "volume",
           "denoising")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Observer:
    """An OSC client of its own on the host (as another tool would be): listens to parameters
    and records every value it is sent, with no /riff/reply_port of its own."""

    def __init__(self, port: int) -> None:
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.values: dict[str, list[Any]] = {}
        self.other: list[Any] = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(encode_message(address, list(args)), self.server)

    def _read(self) -> None:
        while self.running:
            try:
                message = parse_datagram(self.sock.recv(65536))[0]
            except (socket.timeout, OSError):
                continue
            if message.address.startswith("/riff/get/"):
                self.values.setdefault(message.address[len("/riff/get/"):], []).append(message.args[0])
            else:
                self.other.append(message)

    def listen(self) -> None:
        for name in WATCHED:
            self.send(f"/riff/listen/{name}")
        wait_for(lambda: len(self.values) == len(WATCHED), 10, "the observer's listen replies")

    def changed(self, name: str) -> list[Any]:
        """Values of ``name`` after the first (the listen reply)."""
        return self.values.get(name, [])[1:]

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def control(tmp_path: Path) -> Any:
    """``riff-bridge control --tick`` with the default preset's bank, and an observer."""
    port = free_port()
    log = open(tmp_path / "control.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "control", "--osc-port", str(port), "--midi", "none",
                             "--no-web", "--tick", "--preset", "default", "--presets-dir", str(tmp_path / "presets")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    wait_for(lambda: "OSC  udp://" in (tmp_path / "control.log").read_text(), 30, "riff-bridge control")
    observer = Observer(port)
    observer.listen()
    try:
        yield port, observer, tmp_path / "control.log"
    finally:
        observer.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()


def example(name: str, port: int, tmp: Path, replace: dict[str, str] | None = None) -> Path:
    """The example ``name`` with the server port (and other strings) replaced, in ``tmp``."""
    text = (EXAMPLES / name).read_text(encoding="utf-8").replace("9000", str(port))
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_in(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if " WARNING " in line]


# -- Python client ------------------------------------------------------------------------------

def test_osc_client_reads_a_value_and_fails_loudly_without_a_server(control: Any) -> None:
    port, observer, _ = control
    client = [sys.executable, str(EXAMPLES / "osc_client.py"), "--port", str(port)]
    subprocess.run(client + ["set", "alpha", "0.5"], check=True, timeout=30)
    got = subprocess.run(client + ["get", "alpha"], capture_output=True, text=True, timeout=30)
    assert got.returncode == 0 and got.stdout.strip() == "/riff/get/alpha 0.5"
    silent = subprocess.run([sys.executable, str(EXAMPLES / "osc_client.py"), "--port", str(free_port()), "ping"],
                            capture_output=True, text=True, timeout=30)
    assert silent.returncode == 1 and "no reply from 127.0.0.1:" in silent.stderr


# -- Pure Data --------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("pd") is None, reason="needs puredata-core (pd)")
def test_pure_data_patch_sets_values_and_gets_its_replies(control: Any, tmp_path: Path) -> None:
    port, observer, log = control
    inbox = free_port()
    patch = example("riff.pd", port, tmp_path, {"9001": str(inbox)})
    proc = subprocess.run(["timeout", "-s", "INT", "8", "pd", "-nogui", "-stderr", "-noaudio", "-nomidi", "-open",
                           str(patch), "-send", "riff-alpha 0.3", "-send", "riff-prompt bang"],
                          capture_output=True, text=True, timeout=60)
    printed = proc.stdout + proc.stderr
    assert "riff-bridge: riff pong" in printed, printed
    assert re.search(r"riff-bridge: riff bar \d+", printed), printed
    assert observer.changed("alpha") and abs(observer.changed("alpha")[-1] - 0.3) < 1e-6
    assert observer.changed("prompt_a") == ["dub techno chords"]
    assert not errors_in(log), errors_in(log)


# -- SuperCollider ----------------------------------------------------------------------------------

SC_HARNESS = """
Routine {{
    thisProcess.interpreter.executeFile("{path}");
    8.wait;
    ~riffStop.value;
    "HARNESS done".postln;
    0.exit;
}}.play(AppClock);
"""


@pytest.mark.skipif(shutil.which("sclang") is None, reason="needs supercollider-language (sclang)")
def test_supercollider_file_runs_whole_and_its_pattern_walks_the_bank(control: Any, tmp_path: Path) -> None:
    port, observer, log = control
    script = example("supercollider.scd", port, tmp_path)
    harness = tmp_path / "harness.scd"
    harness.write_text(SC_HARNESS.format(path=script))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_DISABLE_SANDBOX": "1", "HOME": str(tmp_path)}
    proc = subprocess.run(["sclang", str(harness)], capture_output=True, text=True, timeout=120, env=env)
    printed = proc.stdout + proc.stderr
    assert "HARNESS done" in printed and "ERROR" not in printed, printed[-3000:]
    assert "riff-bridge 0.1.0" in printed and "alpha = " in printed   # replies reached sclang
    assert observer.changed("prompt_a") == ["dub techno chords with tape delay"]
    assert observer.changed("seed_a") == [2020] and observer.changed("bpm") == [124.0]
    assert observer.changed("quantize") == ["bar"] and observer.changed("guidance") == [9.0]
    assert len(observer.changed("alpha")) >= 2                          # one per bar
    assert len(set(observer.changed("prompt_b"))) >= 3                  # the pattern walked the bank
    assert not errors_in(log), errors_in(log)


# -- TidalCycles ------------------------------------------------------------------------------------

TIDAL_PRELUDE = """:set -XOverloadedStrings
:set prompt ""
import Sound.Tidal.Context
import Control.Concurrent (threadDelay)
"""


@pytest.mark.skipif(shutil.which("ghci") is None, reason="needs ghc and libghc-tidal-dev")
def test_tidal_patterns_all_send(control: Any, tmp_path: Path) -> None:
    port, observer, log = control
    code = example("tidal.hs", port, tmp_path, {"streamHush riff": "threadDelay 8000000\nstreamHush riff"})
    script = tmp_path / "script.ghci"
    script.write_text(TIDAL_PRELUDE + code.read_text() + "\n:quit\n")
    with open(script) as stdin:
        proc = subprocess.run(["ghci", "-v0"], stdin=stdin, capture_output=True, text=True, timeout=180,
                              env={**os.environ, "HOME": str(tmp_path)})
    printed = proc.stdout + proc.stderr
    assert "error" not in printed.lower() and "exception" not in printed.lower(), printed[-3000:]
    assert len(observer.changed("alpha")) >= 8                           # "morph": 4 steps per cycle
    assert 0.7 - 1e-6 < observer.changed("denoising")[-1] < 0.7 + 1e-6
    assert observer.changed("prompt_b")                                  # "bank": slots on side B
    assert {"minimal techno kick and hi-hats", "acid techno with a squelchy 303 bassline"} <= set(
        observer.changed("prompt_a"))                                    # "prompts"
    assert not errors_in(log), errors_in(log)


# -- Sonic Pi ---------------------------------------------------------------------------------------

SONIC_PI = Path("/usr/lib/sonic-pi/app/server/ruby/bin/sonic-pi-server.rb")
SONIC_PI_PORTS = (4556, 4557, 4558, 4560, 4561, 4562, 4563, 4564)


class SonicPi:
    """Debian's sonic-pi-server on a private JACK server; this object plays the GUI (port 4558)."""

    def __init__(self, tmp: Path) -> None:
        from bridge.live.server import JackServer

        self.jack = JackServer(name=f"sonicpi-{os.getpid()}", period=1024).start()
        try:
            self._boot(tmp)
        except BaseException:
            self.jack.stop()
            raise

    def _boot(self, tmp: Path) -> None:
        self.gui = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.gui.bind(("127.0.0.1", 4558))
        self.gui.settimeout(0.2)
        self.log: list[Any] = []
        self.out = open(tmp / "sonic-pi.log", "w")
        env = {**self.jack.env(), "HOME": str(tmp / "home")}
        self.proc = subprocess.Popen(["ruby", str(SONIC_PI), "-u"], stdout=self.out, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.path = tmp / "sonic-pi.log"
        try:
            wait_for(lambda: "successfully booted" in self.path.read_text() or self.proc.poll() is not None, 180,
                     "sonic-pi-server to boot")
            assert self.proc.poll() is None, self.path.read_text()[-3000:]
        except BaseException:
            self._kill()
            self.gui.close()
            raise
        self.running = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while self.running:
            try:
                self.log.append(parse_datagram(self.gui.recv(65536))[0])
            except (socket.timeout, OSError):
                continue

    def send(self, address: str, *args: Any) -> None:
        self.gui.sendto(encode_message(address, ["riff-test", *args]), ("127.0.0.1", 4557))

    def close(self) -> None:
        self.send("/stop-all-jobs")
        self.running = False
        self._kill()
        self.reader.join(2)
        self.gui.close()
        self.out.close()
        self.jack.stop()


    def _kill(self) -> None:
        """Stop the server and what it started (scsynth, erlang, osmid: its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def _ports_free() -> bool:
    for port in SONIC_PI_PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.mark.skipif(not SONIC_PI.exists(), reason="needs sonic-pi-server")
def test_sonic_pi_code_sets_values_and_follows_bar_cues(control: Any, tmp_path: Path) -> None:
    port, observer, log = control
    if not _ports_free():
        pytest.skip("Sonic Pi's ports (4556-4564) are taken; is Sonic Pi running?")
    sonic = SonicPi(tmp_path)
    try:
        sonic.send("/cue-port-start")       # what the GUI sends when "Allow incoming OSC" is on
        sonic.send("/cue-port-internal")    # ...from this machine only
        sonic.send("/run-code", example("sonic_pi.rb", port, tmp_path).read_text())
        wait_for(lambda: len(observer.changed("alpha")) >= 2, 60, "alpha moved by the bar cues")
    finally:
        sonic.close()
    assert observer.changed("prompt_a") == ["lo-fi hip hop beat, vinyl crackle"]
    assert observer.changed("bpm") == [90.0] and observer.changed("quantize") == ["bar"]
    assert observer.changed("prompt_b")            # quantize bar: the bank slot may replace the held prompt
    assert observer.changed("seed_b")                                    # /riff/seed/new b
    assert not any(m.address == "/log/error" for m in sonic.log), [m.args for m in sonic.log if m.address == "/log/error"]
    assert not errors_in(log), errors_in(log)


# -- TouchOSC layout --------------------------------------------------------------------------------

def test_touchosc_layout_is_a_zlib_xml_document_generated_from_the_parameter_table() -> None:
    from bridge.control.touchosc import layout_xml

    data = (EXAMPLES / "riff-bridge.tosc").read_bytes()
    xml = zlib.decompress(data)
    assert xml == layout_xml().encode("utf-8"), "examples/riff-bridge.tosc is stale: python -m bridge.control.touchosc"
    root = ElementTree.fromstring(xml)
    assert root.tag == "lexml"
    addresses = {value.text for value in root.findall(".//path/partial/value")}
    for name in ("alpha", "denoising", "guidance", "steps", "bpm", "volume", "mute"):
        assert {f"/riff/set/{name}", f"/riff/get/{name}"} <= addresses
    faders = {n.find("properties/property/value").text: n for n in root.iter("node") if n.get("type") == "FADER"}
    scale = faders["guidance"].find(".//arguments/partial")
    assert (scale.find("scaleMin").text, scale.find("scaleMax").text) == ("0", "30")
