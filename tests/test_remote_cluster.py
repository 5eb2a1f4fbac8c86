"""``riff-bridge worker`` on a real local Ray cluster (2 CPUs, tiny model, CPU replicas).

One cluster for the whole module: this process starts Ray (``ray.init(num_cpus=2)``), and
the worker command runs as a separate process joining it with ``--address``, as a GPU box's
worker would join its cluster. Clients are the real CLI (``render --engine``) and live
sessions (LiveEngine on the offline output) using :class:`RemoteEngine`.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

from live_fixtures import longest_silence

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

RATE = 44100
BLOCK = 1024
BAR_FRAMES = 88200  # one bar at 120 BPM
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """``riff-bridge worker`` as a child process; its output is collected in :attr:`lines`."""

    def __init__(self, address: str, port: int, token: str) -> None:
        self.command = [sys.executable, "-m", "bridge.cli", "worker", "--model", "tiny", "--replicas", "2",
                        "--address", address, "--port", str(port), "--token", token]
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> str:
        """Start and wait for the ready line; returns it."""
        self.lines = []
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = [line for line in self.lines if line.startswith("riff-bridge worker ready:")]
            if ready:
                return ready[0]
            assert self.process.poll() is None, "worker exited:\n" + "\n".join(self.lines[-30:])
            time.sleep(0.2)
        raise AssertionError("worker not ready:\n" + "\n".join(self.lines[-30:]))

    def _drain(self, process: subprocess.Popen) -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip())

    def stop(self) -> int:
        """SIGTERM, wait; returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Cluster:
    url: str
    token: str
    worker: WorkerProcess
    ready_line: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    worker = None
    try:
        port, token = _free_port(), "tok-" + secrets.token_hex(8)
        worker = WorkerProcess(ray.get_runtime_context().gcs_address, port, token)
        line = worker.start()
        yield Cluster(f"http://127.0.0.1:{port}", token, worker, line)
    finally:
        if worker is not None and worker.process is not None and worker.process.poll() is None:
            worker.stop()
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def _cli(*args: str, threads: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- one clip ------------------------------------------------------------------------------

def test_worker_prints_its_url_and_health_answers(cluster: Cluster) -> None:
    assert cluster.url in cluster.ready_line and "2 replica(s) of 'tiny'" in cluster.ready_line
    status, body = _get(cluster.url, "/health")
    assert status == 200 and b'"status": "ok"' in body and b'"model": "tiny"' in body


def test_remote_render_is_bit_identical_to_local_render(cluster: Cluster, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (512, 300, 3), dtype=np.uint8)).save(tmp_path / "seed.png")
    mask = np.zeros((512, 300), np.uint8)
    mask[:, 120:] = 255
    Image.fromarray(mask, mode="L").save(tmp_path / "mask.png")
    request = ["--prompt", "jazz trio", "--bars", "1", "--bpm", "120", "--steps", "6", "--model", "tiny",
               "--seed-image", str(tmp_path / "seed.png"), "--mask", str(tmp_path / "mask.png"), "--denoising", "0.8"]
    local = _cli("render", *request, "--out", str(tmp_path / "local.wav"))
    remote = _cli("render", *request, "--engine", cluster.url, "--token", cluster.token,
                  "--out", str(tmp_path / "remote.wav"), "--image", str(tmp_path / "remote.png"))
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    local_bytes, remote_bytes = (tmp_path / "local.wav").read_bytes(), (tmp_path / "remote.wav").read_bytes()
    assert len(local_bytes) > 300_000 and local_bytes == remote_bytes
    assert "network" in remote.stdout and "unet" in remote.stdout


def test_wrong_or_missing_token_is_refused_with_one_line(cluster: Cluster, tmp_path: Path) -> None:
    from bridge.engine.request import GenerationRequest
    from bridge.remote.client import RemoteEngine, RemoteEngineError

    wrong = _cli("render", "--prompt", "x", "--width", "64", "--steps", "2", "--engine", cluster.url,
                 "--token", "not-the-token", "--out", str(tmp_path / "x.wav"))
    assert wrong.returncode == 2 and not (tmp_path / "x.wav").exists()
    assert wrong.stderr.strip().splitlines() == [
        f"riff-bridge render: error: worker {cluster.url}: HTTP 401: token: expected the worker's token, got a wrong one"]
    with pytest.raises(RemoteEngineError, match=r"HTTP 401: token: expected 'Authorization: Bearer <token>'.*got none$"):
        RemoteEngine(cluster.url).render(GenerationRequest(prompt_a="x", width=64, steps=2))


def test_a_request_naming_a_file_path_is_refused(cluster: Cluster) -> None:
    from bridge.remote.wire import pack

    host, port = cluster.url.removeprefix("http://").split(":")
    for field_, value in (("seed_image", "/etc/hostname"), ("mask", "../../etc/passwd")):
        frame = pack({"request": {"prompt_a": "x", "width": 64, "seed_image": "grid", field_: value},
                      "num_samples": 2778})
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/generate", body=frame, headers={"Authorization": f"Bearer {cluster.token}"})
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        assert response.status == 400, text
        assert text.startswith(f"request refused: {field_}: expected a built-in name") and value in text
        assert "never opens files" in text and text.count("\n") == 1
    assert _get(cluster.url, "/health")[0] == 200


def test_an_abandoned_request_is_cancelled_on_the_replica(cluster: Cluster) -> None:
    import json

    from bridge.engine.protocol import GenerationCancelled
    from bridge.engine.request import GenerationRequest
    from bridge.remote.client import RemoteEngine
    from live_fixtures import wait_until

    request = GenerationRequest(prompt_a="long", width=1024, steps=150)
    began = time.monotonic()
    with pytest.raises(GenerationCancelled):
        RemoteEngine(cluster.url, cluster.token).render(request, cancel=lambda: time.monotonic() - began > 1.5)
    assert time.monotonic() - began < 5.0

    def replica_stopped() -> bool:
        return any(json.loads(_get(cluster.url, "/health")[1])["cancelled"] >= 1 for _ in range(4))

    assert wait_until(replica_stopped, 90, step=0.5), "no replica reported the cancelled generation"


# -- live sessions ---------------------------------------------------------------------------

class Tap:
    """A RemoteEngine that remembers which replica made each clip."""

    def __init__(self, url: str, token: str) -> None:
        from bridge.audio.codec import SpectrogramCodec
        from bridge.remote.client import RemoteEngine

        self.engine = RemoteEngine(url, token, timeout=60.0, codec=SpectrogramCodec(iterations=4))
        self.codec = self.engine.codec
        self.replicas: list[int] = []

    def generate(self, request: Any, num_samples: int, sample_rate: int, cancel: Any = None) -> Any:
        clip = self.engine.generate(request, num_samples, sample_rate, cancel)
        self.replicas.append(self.engine.last_reply.replica)  # type: ignore[union-attr]
        return clip


@dataclass
class Stream:
    """One live session on the offline output, played at about real time."""

    live: Any
    output: Any
    tap: Tap
    errors: list[BaseException] = field(default_factory=list)
    last_bar: float = 0.0

    def clips(self) -> int:
        return self.live.metrics().clips_generated

    def tick(self) -> None:
        """Play one more bar when the next clip is ready or a bar's time (2 s) has passed."""
        player = self.live.player
        ready = player.offer.next is not None and (player.current is None or
                                                   player.offer.next.serial != player.current.serial)
        if ready or time.monotonic() - self.last_bar > 2.0:
            self.last_bar = time.monotonic()
            self.output.run(int(np.ceil(BAR_FRAMES / BLOCK)))

    def played(self) -> np.ndarray:
        starts = self.live.boundaries()
        assert starts, "nothing was played"
        return self.output.recording()[starts[0].jack_frame + 1:]


@contextmanager
def _streams(cluster: Cluster, count: int = 2) -> Iterator[list[Stream]]:
    from bridge.live.engine import LiveEngine, LiveOptions
    from bridge.live.offline import OfflineOutput, OfflineTransport
    from bridge.state import ControlState, StateStore
    from bridge.timing import Tempo

    with ExitStack() as stack:
        streams = []
        for index in range(count):
            store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a=f"organ {index}", prompt_b=f"organ {index}",
                                            steps=4, seed_a=10 * index, seed_b=10 * index + 1))
            output = OfflineOutput(RATE, BLOCK, OfflineTransport(RATE, Tempo(120.0)))
            tap = Tap(cluster.url, cluster.token)
            errors: list[BaseException] = []
            live = stack.enter_context(LiveEngine(store, tap, output, LiveOptions(retry_seconds=0.2),
                                                  on_error=errors.append))
            output.run(1)
            streams.append(Stream(live, output, tap, errors))
        yield streams


def _play_until(streams: list[Stream], condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stream in streams:
            stream.tick()
        if condition():
            return True
        time.sleep(0.05)
    return False


def _replicas(streams: list[Stream]) -> set[int]:
    return {pid for s in streams for pid in s.tap.replicas}


def test_two_sessions_share_two_replicas_and_survive_a_killed_replica(cluster: Cluster) -> None:
    with _streams(cluster) as streams:
        assert _play_until(streams, lambda: all(s.clips() >= 3 for s in streams) and len(_replicas(streams)) == 2,
                           180), [s.live.metrics().summary() for s in streams]
        before = _replicas(streams)
        victim = streams[0].tap.replicas[-1]
        counts = [s.clips() for s in streams]
        os.kill(victim, signal.SIGKILL)
        assert _play_until(streams, lambda: all(s.clips() >= c + 3 for s, c in zip(streams, counts)), 180), \
            [s.live.metrics().summary() for s in streams]
        assert _play_until(streams, lambda: _replicas(streams) - before, 180), "no restarted replica answered"
        metrics = [s.live.metrics() for s in streams]
        played = [s.played() for s in streams]
    print(f"\nkilled replica {victim} of {sorted(before)}; clips per session before the kill {counts}, "
          f"after {[m.clips_generated for m in metrics]}; failures {[m.failures for m in metrics]}; "
          f"replicas answering now {sorted(_replicas(streams) - before)} (restarted); "
          f"longest silence {[longest_silence(p) for p in played]} frames in {[len(p) for p in played]}")
    assert all(longest_silence(p) == 0 for p in played)
    assert all(m.clips_generated >= c + 3 for m, c in zip(metrics, counts))
    assert victim not in {pid for s in streams for pid in s.tap.replicas[-2:]}


def test_stopping_the_worker_keeps_loops_playing_and_clips_resume_after_restart(cluster: Cluster) -> None:
    with _streams(cluster) as streams:
        assert _play_until(streams, lambda: all(s.clips() >= 2 for s in streams), 180)
        assert cluster.worker.stop() == 0
        stopped_at = [len(s.output.recording()) for s in streams]
        assert any("riff-bridge worker stopped" in line for line in cluster.worker.lines)
        failures = [s.live.metrics().failures for s in streams]
        assert _play_until(streams, lambda: all(s.live.metrics().failures >= f + 2 and
                                                len(s.output.recording()) - a >= 2 * BAR_FRAMES
                                                for s, f, a in zip(streams, failures, stopped_at)), 120)
        counts = [s.clips() for s in streams]
        down = [s.live.metrics().failures for s in streams]
        frames = [len(s.output.recording()) for s in streams]
        cluster.worker.start()
        assert _play_until(streams, lambda: all(s.clips() >= c + 2 for s, c in zip(streams, counts)), 240)
        played = [s.played() for s in streams]
        errors = [s.errors for s in streams]
        recordings = [s.output.recording() for s in streams]
        after = [s.clips() for s in streams]
    print(f"\nworker stopped: failures per session while down {[f2 - f for f2, f in zip(down, failures)]}, "
          f"clips before restart {counts}, after {after}; "
          f"frames played while it was down {[f - a for f, a in zip(frames, stopped_at)]}, "
          f"after the restart {[len(r) - f for r, f in zip(recordings, frames)]}; "
          f"longest silence {[longest_silence(p) for p in played]}; first error: {errors[0][0]}")
    assert all(longest_silence(p) == 0 for p in played)
    assert all(f - a >= 2 * BAR_FRAMES for f, a in zip(frames, stopped_at))
    assert all(len(r) - f > 2 * BAR_FRAMES for r, f in zip(recordings, frames))
    assert all(any("worker http://127.0.0.1" in str(e) for e in errs) for errs in errors)
