"""The live view in a real headless Chromium (Debian's, driven by Playwright), against a running
``riff-bridge serve --model tiny`` on a private JACK server: the bar counter advances, a clip's
spectrogram appears, the alpha slider reaches OSC, OSC moves the slider, and an out-of-range
value typed on the page is refused with its error beside the control."""

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
from pathlib import Path
from typing import Any

import pytest

from bridge.live.server import JackServer
from control_fixtures import OscPeer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.jack, pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt chromium)")]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """``riff-bridge serve`` as a subprocess; ``url`` is its live view's address."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge.cli", "serve", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.url = self._wait_url(120.0)
        except AssertionError:
            self.stop()
            raise

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line)

    def _wait_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(r"web: (http://\S+)", line)
                if found:
                    return found.group(1)
            assert self.proc.poll() is None, "serve exited:\n" + "".join(self.lines[-40:])
            time.sleep(0.1)
        raise AssertionError("serve printed no web address:\n" + "".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def get_value(peer: OscPeer, name: str) -> Any:
    peer.drain(0.05)
    peer.send(f"/riff/get/{name}")
    for _ in range(50):
        message = peer.recv(3.0)
        if message.address == f"/riff/get/{name}":
            return message.args[0]
    raise AssertionError(f"no /riff/get/{name} reply")


def _wait(predicate: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not predicate():
        assert time.monotonic() - began < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - began


@pytest.fixture
def served(tmp_path: Path, tiny_model_dir: Path) -> Any:
    server = JackServer(name=f"web-{os.getpid()}", period=1024).start()
    port = _free_udp_port()
    presets = tmp_path / "presets"
    presets.mkdir()
    env = {**server.env(), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONUNBUFFERED": "1"}
    serve = None
    try:
        serve = Serve(["--model", str(tiny_model_dir), "--bars", "1", "--steps", "4", "--osc-port", str(port),
                       "--midi", "none", "--timebase-master", "--free-run", "--web-port", "0",
                       "--presets-dir", str(presets), "--preset", "default"], env)
        yield serve, OscPeer(("127.0.0.1", port))
    finally:
        if serve is not None:
            serve.stop()
        server.stop()


def _browser() -> Any:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    return playwright, browser


def _bar(page: Any) -> int:
    text = page.text_content("#barbeat") or ""
    return int(text.split(":")[0]) if ":" in text else -1


def _clip_pixels(page: Any) -> int:
    """Bright pixels in the waterfall canvas (drawn clips are coloured; the empty canvas is near black)."""
    return page.evaluate("""() => {
        const c = document.getElementById('waterfall'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 120) n++; return n; }""")


@pytest.mark.timeout(1200)
def test_live_view_in_chromium_follows_and_controls_serve(served: Any, tmp_path: Path) -> None:
    serve, peer = served
    playwright, browser = _browser()
    errors: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(serve.url)
        page.wait_for_selector("#p-alpha")

        # The bar counter advances and a clip's spectrogram appears in the waterfall.
        # (the model warms up first: minutes on a busy 2-core machine)
        _wait(lambda: page.evaluate("(state.live.clips_started || 0) >= 1"), 600, "the first clip playing")
        first = _bar(page)
        _wait(lambda: _bar(page) >= first + 2, 60, f"the bar counter to pass {first + 1}")
        _wait(lambda: page.evaluate("state.images.size") >= 1, 300, "a clip spectrogram")
        _wait(lambda: _clip_pixels(page) > 2000, 10, "the spectrogram drawn on the canvas")

        # Page -> OSC: the slider's value is what /riff/get/alpha reports.
        page.fill("#p-alpha", "0.37")
        _wait(lambda: abs(get_value(peer, "alpha") - 0.37) < 1e-3, 5, "/riff/get/alpha to read 0.37")

        # OSC -> page: the slider follows within a second.
        peer.send("/riff/set/alpha", 0.81)
        followed = _wait(lambda: abs(float(page.input_value("#p-alpha")) - 0.81) < 1e-3, 1.0,
                         "the alpha slider to follow /riff/set/alpha 0.81")
        print(f"slider followed OSC in {followed * 1000:.0f} ms (test polling included)")

        # Out of range from the page: refused, the error beside the control, the value kept.
        page.fill("#n-alpha", "1.5")
        page.dispatch_event("#n-alpha", "change")
        page.wait_for_function("document.getElementById('err-alpha').textContent.includes('[0, 1]')", timeout=5000)
        assert "alpha: expected a number in [0, 1], got 1.5" in page.text_content("#err-alpha")
        assert abs(get_value(peer, "alpha") - 0.81) < 1e-3

        # Errors as they happen: a bad OSC message from another client shows in the error list.
        peer.send("/riff/set/steps", "many")
        page.wait_for_function("document.getElementById('errors').textContent.includes(\"steps: expected\")",
                               timeout=5000)
        shot = Path(os.environ.get("RIFF_WEB_SCREENSHOT", tmp_path / "live-view.png"))
        page.screenshot(path=str(shot), full_page=True)
        assert not errors, errors
    finally:
        browser.close()
        playwright.stop()
