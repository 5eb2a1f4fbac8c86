"""The DAW side of a remote worker: an Engine whose clips are made on another machine.

:class:`RemoteEngine` implements the same ``generate(request, num_samples, sample_rate,
cancel) -> Clip`` protocol as the local and child-process engines, so the live engine,
``render`` and ``interpolate`` use it unchanged. Per clip it:
  1. resolves the request's seed image and mask on this machine: built-in names travel as
     names, files are read and fitted here and travel as PNG bytes;
  2. POSTs one frame (:mod:`bridge.remote.wire`) to ``URL/generate`` with the token, from a
     helper thread, while the calling thread polls ``cancel()`` and the deadline; a cancel
     or a timeout closes the connection (Ray Serve then cancels the request on the replica);
  3. decodes the reply: the spectrogram image through this machine's codec (``returns=
     "image"``, the default), or the worker's audio (``"audio"``).
An unreachable worker, a timeout, an HTTP error or an unreadable reply raises
:class:`RemoteEngineError` (one line naming the worker): the live engine counts it as a
generation failure, keeps its loop playing, reports ``/riff/error`` and retries.
:attr:`codec` (this machine's) serves the live engine's tempo refits.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bridge.engine.clip import Clip
from bridge.engine.protocol import CancelCheck, GenerationCancelled
from bridge.errors import BridgeError, ParameterError, check_choice
from bridge.remote.wire import ATTACHED, RETURNS, Call, Reply, mask_png, png_bytes, rgb_image

#: Seconds between cancel checks while a call is in flight.
POLL_SECONDS = 0.02
#: Default seconds a clip may take before the call counts as failed.
DEFAULT_TIMEOUT = 120.0


class RemoteEngineError(BridgeError):
    """The worker could not be reached, refused the call, or answered something unusable."""


class RemoteEngine:
    """A client of ``riff-bridge worker`` at ``url`` (see the module docstring).

    ``token``: the worker's token (sent as ``Authorization: Bearer``); ``timeout``: seconds per
    clip; ``returns``: ``"image"`` (decode here) or ``"audio"`` (the worker decodes).
    Counters :attr:`calls`, :attr:`bytes_sent`, :attr:`bytes_received` are kept for benches.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 returns: str = "image", codec: Any = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ParameterError("engine", "an http://HOST:PORT URL printed by `riff-bridge worker`", url)
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self.returns = check_choice("returns", returns, RETURNS)
        self._host, self._port = parts.hostname, parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._codec = codec
        self.calls = self.bytes_sent = self.bytes_received = 0
        self.last_reply: Reply | None = None

    @property
    def codec(self) -> Any:
        """This machine's spectrogram codec (decodes images, refits loops)."""
        if self._codec is None:
            from bridge.audio.codec import SpectrogramCodec

            self._codec = SpectrogramCodec()
        return self._codec

    # -- Engine protocol ------------------------------------------------------------------

    def generate(self, request: Any, num_samples: int, sample_rate: int,
                 cancel: CancelCheck | None = None) -> Clip:
        """A stereo clip of exactly ``num_samples`` frames, made by the worker."""
        started = time.perf_counter()
        call = self.call_for(request, num_samples, sample_rate)
        reply = Reply.decode(self.post("/generate", call.encode(), cancel))
        self.last_reply = reply
        network = time.perf_counter() - started - sum(v for k, v in reply.timings.items() if k != "batch")
        return self._clip(request, reply, num_samples, sample_rate, network)

    def render(self, request: Any, sample_rate: int = 44100, cancel: CancelCheck | None = None) -> Clip:
        """A clip of the request's own exact length (as DiffusionEngine.render)."""
        return self.generate(request, request.num_samples(sample_rate), sample_rate, cancel)

    def health(self) -> dict[str, Any]:
        """The worker's ``GET /health`` answer; RemoteEngineError when it is not up."""
        return json.loads(self._exchange("GET", "/health", b"", None, 10.0))

    def close(self) -> None:
        """Nothing to release (each call uses its own connection)."""

    # -- request side ---------------------------------------------------------------------

    def call_for(self, request: Any, num_samples: int, sample_rate: int) -> Call:
        """The wire call: file inputs read and fitted here, attached as PNG bytes."""
        from bridge.engine.mask import BUILTIN_MASKS, mask_array
        from bridge.engine.seeds import BUILTIN_SEEDS, seed_image

        seed_name, mask_name, seed_bytes, mask_bytes = request.seed_image, request.mask, None, None
        if seed_name and seed_name not in BUILTIN_SEEDS:
            seed_name, seed_bytes = ATTACHED, png_bytes(seed_image(seed_name, request, self.codec))
        if mask_name and mask_name not in BUILTIN_MASKS:  # fitted as the seed image is
            width, height = request.generation_width(), self.codec.params.n_mels
            mask_name, mask_bytes = ATTACHED, mask_png(mask_array(request.mask, width, height))
        wire = request.with_changes(seed_image=seed_name, mask=mask_name)
        return Call(wire, num_samples, sample_rate, self.returns, seed_bytes, mask_bytes)

    # -- reply side -----------------------------------------------------------------------

    def _clip(self, request: Any, reply: Reply, num_samples: int, rate: int, network: float) -> Clip:
        from bridge.audio.image import decode_image
        from bridge.engine.diffusion import image_audio

        image = rgb_image(reply.image, "reply image")
        timings = {k: v for k, v in reply.timings.items() if k != "batch"}
        timings["network"] = max(0.0, network)
        if reply.audio is None:
            began = time.perf_counter()
            mel, audio = image_audio(self.codec, image, num_samples, rate)
            timings["client_codec"] = time.perf_counter() - began
        else:
            if reply.audio.shape[0] != num_samples:
                raise RemoteEngineError(f"worker {self.url}: expected {num_samples} frames, got {reply.audio.shape[0]}")
            mel = decode_image(image, stereo=False)[0]
            audio = np.repeat(reply.audio[:, None], 2, axis=1).astype(np.float32)
        return Clip(audio, rate, mel, image, request, timings)

    # -- HTTP -----------------------------------------------------------------------------

    def post(self, path: str, body: bytes, cancel: CancelCheck | None) -> bytes:
        """POST ``body`` to ``path``; the reply body. Raises GenerationCancelled when
        ``cancel()`` turns true, RemoteEngineError on any failure or timeout."""
        self.calls += 1
        self.bytes_sent += len(body)
        reply = self._exchange("POST", path, body, cancel, self.timeout)
        self.bytes_received += len(reply)
        return reply

    def _exchange(self, method: str, path: str, body: bytes, cancel: CancelCheck | None, timeout: float) -> bytes:
        exchange = _Exchange(self._host, self._port, timeout + 5.0)  # the deadline below wins
        thread = threading.Thread(target=exchange.run, args=(method, self._prefix + path, body, self._headers()),
                                  name="riff-bridge-remote", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not exchange.done.wait(POLL_SECONDS):
            if cancel is not None and cancel():
                exchange.abort()
                raise GenerationCancelled("cancelled while the worker was generating")
            if time.monotonic() > deadline:
                exchange.abort()
                raise RemoteEngineError(f"worker {self.url}: no answer within {timeout:g} s")
        return self._checked(exchange)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/octet-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _checked(self, exchange: "_Exchange") -> bytes:
        if exchange.error is not None:
            raise RemoteEngineError(f"worker {self.url} unreachable: {exchange.error}")
        if exchange.status != 200:
            line = exchange.body.decode("utf-8", "replace").strip().splitlines()
            raise RemoteEngineError(f"worker {self.url}: HTTP {exchange.status}: {line[0] if line else ''}")
        return exchange.body


class _Exchange:
    """One HTTP request/response on its own connection, abortable from another thread."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.done = threading.Event()
        self.status = 0
        self.body = b""
        self.error: BaseException | None = None

    def run(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.conn.request(method, path, body=body or None, headers=headers)
            response = self.conn.getresponse()
            self.status, self.body = response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            self.error = err
        finally:
            self.conn.close()
            self.done.set()

    def abort(self) -> None:
        """Close the socket under the running request (the server sees the client leave)."""
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
