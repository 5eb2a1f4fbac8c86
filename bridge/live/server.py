"""A private JACK server (dummy backend) for demos and tests when no server is running."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from typing import Any, Iterator

from bridge.errors import BridgeError


#: Frames per period of the private server that demos and benchmarks start when none runs:
#: jackd's own default for the dummy backend (23 ms at 44.1 kHz). No DAW shares a private
#: server, and loops switch on bar lines, so its latency costs nothing audible; at 256 frames
#: (5.8 ms) a 2-core virtual machine misses deadlines now and then even for a C client
#: (``bench/soak.py --period 256``; README, "Realtime path").
PRIVATE_PERIOD = 1024


class JackServerError(BridgeError):
    """jackd is missing or did not come up."""


class JackServer:
    """``jackd -n NAME -d dummy -r RATE -p PERIOD`` as a child process.

    Use as a context manager; ``env()`` gives the variables that make clients (and child
    processes) pick this server. ``realtime`` uses SCHED_FIFO when permitted (root): 0 xruns
    under load here, versus ~20 per 5 s with ``--no-realtime``.
    """

    def __init__(self, name: str | None = None, sample_rate: int = 44100, period: int = 256,
                 realtime: bool = True) -> None:
        self.name = name or f"riff-{uuid.uuid4().hex[:8]}"
        self.sample_rate = sample_rate
        self.period = period
        self.realtime = realtime
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def command(self) -> list[str]:
        """The jackd command line."""
        rt = ["-R"] if self.realtime and os.geteuid() == 0 else ["--no-realtime"]
        return ["jackd", "-n", self.name, *rt, "-d", "dummy", "-r", str(self.sample_rate),
                "-p", str(self.period)]

    def env(self) -> dict[str, str]:
        """Environment selecting this server (JACK_DEFAULT_SERVER) and never auto-starting one."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self, timeout: float = 10.0) -> "JackServer":
        """Start jackd and wait until a client can connect; raises JackServerError."""
        if shutil.which("jackd") is None:
            raise JackServerError("jackd not found: install jackd2 (apt-get install jackd2)")
        # A file, not a pipe: nobody drains a pipe while the server runs, and a full one would
        # stall jackd's logging (it reports every xrun).
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=self._log,
                                        env=self.env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JackServerError(f"jackd exited with {self.process.returncode}: {self.log()[-400:]}")
            if self.is_up():
                return self
            time.sleep(0.1)
        self.stop()
        raise JackServerError(f"jackd server {self.name!r} did not come up in {timeout:g} s")

    def is_up(self) -> bool:
        """True when ``jack_lsp`` can reach the server."""
        probe = subprocess.run(["jack_lsp"], env=self.env(), capture_output=True, timeout=5)
        return probe.returncode == 0

    def log(self) -> str:
        """What jackd has written to stderr so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def xrun_causes(self) -> dict[str, int]:
        """jackd's own account of its xruns: ``driver`` (its cycle started late) and, per
        client, ``"NAME Running"`` (that client's callback overran: its own fault) or
        ``"NAME Triggered"`` (it never got the CPU in time: the machine)."""
        causes: dict[str, int] = {}
        for line in self.log().splitlines():
            key = _xrun_cause(line)
            if key is not None:
                causes[key] = causes.get(key, 0) + 1
        return causes

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate jackd (kill after ``timeout``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _xrun_cause(line: str) -> str | None:
    """The cause one jackd log line gives for an xrun (see :meth:`JackServer.xrun_causes`)."""
    if "Driver::Process XRun" in line:
        return "driver"
    found = re.search(r"client = (.+?) was not finished, state = (\w+)", line)
    return f"{found.group(1)} {found.group(2)}" if found is not None else None


def server_running(name: str | None = None) -> bool:
    """True when a JACK server (``name`` or the default) answers."""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    if name:
        env["JACK_DEFAULT_SERVER"] = name
    if shutil.which("jack_lsp") is None:
        return False
    return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5).returncode == 0


@contextlib.contextmanager
def ensure_server(sample_rate: int = 44100, period: int = PRIVATE_PERIOD) -> Iterator[JackServer | None]:
    """Use the running JACK server (yields None), or run a private one meanwhile (yields it).

    While the private server runs, JACK_DEFAULT_SERVER points at it for this process and its
    children; the previous environment is restored afterwards.
    """
    if server_running():
        yield None
        return
    with JackServer(sample_rate=sample_rate, period=period) as server:
        saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
