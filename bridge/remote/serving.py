"""The Ray Serve application of ``riff-bridge worker`` (this module imports ray).

One deployment, :class:`GeneratorDeployment`, is the HTTP ingress and the generator:
  - ``GET /health``: 200 with a small JSON once the replica's model is loaded (a replica
    only receives traffic after its constructor, which loads the model, returned);
  - ``POST /generate``: token checked (:mod:`bridge.remote.access`), the frame decoded
    (:class:`~bridge.remote.wire.Call`; a path in the request is refused with 400), then
    queued into ``@serve.batch``: calls that arrive while the replica is busy are answered
    together, same-shape ones in one UNet batch (:class:`~bridge.remote.generator.Generator`).
    The model runs on one thread per replica, so the replica's event loop keeps answering.
  - cancellation: when a client closes its connection, Ray Serve cancels the request's
    task; the call's cancel flag is then set and the engine stops between denoising steps
    (a batch stops once all of its calls were cancelled). A call still waiting in the
    batch queue is dropped by Ray Serve itself.
Replicas are Ray actors with ``num_cpus``/``num_gpus`` each, running torch on as many threads
as they reserve CPUs (at least one; a client decoding with the same thread count gets audio
bit-identical to a local render); Ray restarts a replica whose process died while the
others keep serving.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from bridge.engine.protocol import GenerationCancelled
from bridge.errors import BridgeError
from bridge.remote.access import refusal
from bridge.remote.options import WorkerOptions
from bridge.remote.wire import Call, Reply

#: Name of the Serve application.
APP_NAME = "riff-bridge"
#: Most calls answered together by one replica.
MAX_BATCH = 4
#: Seconds a lone call waits for company (short: a live stream should not wait).
BATCH_WAIT_SECONDS = 0.005


@dataclass
class _Pending:
    call: Call
    cancelled: threading.Event


@serve.deployment(max_ongoing_requests=2 * MAX_BATCH, health_check_period_s=2.0, graceful_shutdown_timeout_s=2.0)
class GeneratorDeployment:
    """One replica: a loaded :class:`Generator` behind HTTP (see the module docstring)."""

    def __init__(self, model: str, device: str, token: str | None, threads: int = 1) -> None:
        import torch

        from bridge.remote.generator import Generator

        torch.set_num_threads(threads)
        self.generator = Generator(model, device)
        self.token = token
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riff-bridge-model")

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/health"):
            return _json(200, self.generator.health())
        if request.method != "POST" or not path.endswith("/generate"):
            return _text(404, f"path: expected GET /health or POST /generate, got {request.method} {path or '/'}")
        problem = refusal(request.headers.get("authorization"), self.token)
        if problem is not None:
            return _text(401, problem)
        try:
            call = Call.decode(await request.body())
        except (BridgeError, TypeError, ValueError) as err:
            return _text(400, f"request refused: {err}")
        return await self._generate(call)

    async def _generate(self, call: Call) -> Response:
        pending = _Pending(call, threading.Event())
        try:
            outcome = await self.batch(pending)
        except asyncio.CancelledError:
            pending.cancelled.set()
            raise
        if isinstance(outcome, GenerationCancelled):
            return _text(499, f"cancelled: {outcome}")
        if isinstance(outcome, BaseException):
            status = 400 if isinstance(outcome, BridgeError) else 500
            return _text(status, f"generation failed: {type(outcome).__name__}: {outcome}")
        return Response(outcome.encode(), media_type="application/octet-stream")

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
    async def batch(self, pendings: list[_Pending]) -> list[Reply | BaseException]:
        """Answer the calls collected by Ray Serve, on the model thread."""
        calls = [p.call for p in pendings]
        cancels = [p.cancelled.is_set for p in pendings]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.generator.answer, calls, cancels)


def build_app(options: WorkerOptions) -> Any:
    """The bound Serve application for ``options``."""
    actor = {"num_cpus": options.cpus_per_replica, "num_gpus": options.gpus_per_replica}
    deployment = GeneratorDeployment.options(num_replicas=options.replicas, ray_actor_options=actor)
    return deployment.bind(options.model, options.device, options.token, options.threads)


def deploy(options: WorkerOptions, host: str, port: int, name: str = APP_NAME, route_prefix: str = "/") -> None:
    """Start Serve's HTTP proxy on ``host:port`` (this Ray cluster) and run the application
    ``name`` under ``route_prefix``; returns once every replica has loaded its model."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(options), name=name, route_prefix=route_prefix)


def undeploy(shutdown: bool) -> None:
    """Delete the application (and shut Serve down too when ``shutdown``)."""
    if shutdown:
        serve.shutdown()
    else:
        serve.delete(APP_NAME)


def _json(status: int, value: Any) -> Response:
    return Response(json.dumps(value), status_code=status, media_type="application/json")


def _text(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")
