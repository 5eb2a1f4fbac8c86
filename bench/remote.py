"""Benchmark of generation through a Ray Serve worker on loopback, against the local child process.

One run, one machine (a local Ray cluster of ``--cpus`` CPUs is started in this process):
  1. latency: seconds per clip of the same request sequence through the local child-process
     engine (the baseline, ``bridge.live.childengine``) and through ``riff-bridge worker``'s
     application on 127.0.0.1, both ways the worker can answer: the spectrogram image (PNG,
     decoded by this process's CPU) or audio (decoded on the worker, sent with the image);
     overhead in ms against the baseline, bytes sent and received per clip, and the worker's
     own time per clip (so overhead splits into network+serialisation and decode placement);
  2. throughput: clips per second of 2 concurrent clients (live streams) against 1 replica
     holding all ``--cpus`` (its two streams share UNet batches) and 2 replicas of half as many
     each (audio replies, so the clients do no decoding and the replicas do all the work);
  3. on a CUDA GPU only: batched throughput of 1, 2 and 4 concurrent same-shape streams in one
     replica's UNet batch (``Generator.answer``), against 1 stream; without a GPU it says so.

    .venv/bin/python bench/remote.py [--model tiny] [--clips 4] [--bars 2] [--steps 10] [--cpus 2]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.engine.factory import load_engine  # noqa: E402
from bridge.engine.request import GenerationRequest  # noqa: E402
from bridge.live.childengine import ChildProcessEngine  # noqa: E402
from bridge.remote.client import RemoteEngine  # noqa: E402
from bridge.remote.options import WorkerOptions  # noqa: E402

RATE = 44100


def requests(args: argparse.Namespace, count: int, offset: int = 0) -> list[GenerationRequest]:
    """A seed walk of ``count`` clips (same shape, different seeds and alphas)."""
    return [GenerationRequest(prompt_a="funk bass", prompt_b="disco strings", seed_a=offset + k, seed_b=offset + k + 1,
                              alpha=(k % 4) / 4, steps=args.steps, bars=args.bars, bpm=120.0)
            for k in range(count)]


def seconds_per_clip(engines: dict[str, Any], batch: list[GenerationRequest]) -> dict[str, float]:
    """Median wall seconds per clip of each engine (after one warm-up clip each), the
    engines taking turns clip by clip so that a busy machine slows them alike."""
    times: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        engine.generate(batch[0], batch[0].num_samples(RATE), RATE)
    for request in batch:
        for name, engine in engines.items():
            began = time.perf_counter()
            engine.generate(request, request.num_samples(RATE), RATE)
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def latency_rows(child: Any, url: str, batch: list[GenerationRequest]) -> list[str]:
    """The baseline row and one row per reply kind through the worker."""
    remotes = {returns: RemoteEngine(url, returns=returns) for returns in ("image", "audio")}
    seconds = seconds_per_clip({"child": child, **remotes}, batch)
    baseline = seconds["child"]
    rows = [f"| local child process (baseline) | {baseline:.3f} | 0 | 0 | 0 | - |"]
    for returns, engine in remotes.items():
        calls, reply = engine.calls, engine.last_reply
        worker = sum(v for k, v in reply.timings.items() if k != "batch")  # type: ignore[union-attr]
        rows.append(f"| worker on loopback, returns {returns} | {seconds[returns]:.3f} | "
                    f"{1000 * (seconds[returns] - baseline):+.0f} | {engine.bytes_sent / calls:,.0f} | "
                    f"{engine.bytes_received / calls:,.0f} | {worker:.3f} |")
    return rows


def throughput(url: str, batch_of: Callable[[int], list[GenerationRequest]], clients: int) -> float:
    """Clips per second of ``clients`` concurrent clients making their batches."""
    engines = [RemoteEngine(url, returns="audio") for _ in range(clients)]
    for engine, batch in zip(engines, [batch_of(100 * c) for c in range(clients)]):
        engine.generate(batch[0], batch[0].num_samples(RATE), RATE)
    batches = [batch_of(100 * c + 50) for c in range(clients)]
    threads = [threading.Thread(target=lambda e=e, b=b: [e.generate(r, r.num_samples(RATE), RATE) for r in b])
               for e, b in zip(engines, batches)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(len(b) for b in batches) / (time.perf_counter() - began)


def gpu_rows(args: argparse.Namespace) -> list[str]:
    """Batched throughput of 1, 2 and 4 streams on one GPU, or a line saying there is none."""
    import torch

    if not torch.cuda.is_available():
        return ["no CUDA GPU on this machine (none was lent to this run): batched GPU throughput of "
                "1/2/4 streams not measured"]
    from bridge.engine.diffusion import DiffusionEngine
    from bridge.remote.generator import Generator
    from bridge.remote.wire import Call

    generator = Generator(args.model, engine=DiffusionEngine(args.model, device="cuda"))
    rows, base = ["| streams in one batch | clips/s | vs 1 stream |", "| --- | --- | --- |"], 0.0
    for streams in (1, 2, 4):
        calls = [Call(r, r.num_samples(RATE), returns="audio") for r in requests(args, streams)]
        generator.answer(calls)
        began = time.perf_counter()
        for _ in range(args.clips):
            generator.answer(calls)
        rate = streams * args.clips / (time.perf_counter() - began)
        base = base or rate
        rows.append(f"| {streams} | {rate:.2f} | {rate / base:.2f}x |")
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--clips", type=int, default=4, help="clips per measurement")
    parser.add_argument("--bars", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()
    batch = requests(args, args.clips)
    seconds = batch[0].num_samples(RATE) / RATE
    print(f"model {args.model}, {args.bars:g} bars at 120 BPM ({seconds:.2f} s clips), {args.steps} steps, "
          f"{args.clips} clips per row, Ray cluster of {args.cpus} CPUs on this machine", flush=True)
    import ray
    from ray import serve

    from bridge.remote.serving import APP_NAME, deploy

    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    # The child at the bench's own priority, as the Ray replicas run (serve's default,
    # SCHED_IDLE, would measure the other jobs on a shared machine instead).
    child = ChildProcessEngine(partial(load_engine, args.model, "cpu"), nice=None, policy=None)
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        deploy(WorkerOptions(args.model, "cpu", replicas=1, cpus_per_replica=args.cpus), "127.0.0.1", port)
        rows = latency_rows(child.start(), url, batch)
        child.close()
        print("\n| path | s/clip | overhead ms | bytes sent/clip | bytes received/clip | worker s/clip |")
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows), flush=True)
        batch_of = partial(requests, args, args.clips)
        one = throughput(url, batch_of, 2)
        serve.delete(APP_NAME)
        deploy(WorkerOptions(args.model, "cpu", replicas=2, cpus_per_replica=args.cpus / 2), "127.0.0.1", port)
        two = throughput(url, batch_of, 2)
        half = args.cpus / 2
        print("\n| replicas | CPUs each | clients | clips/s | vs 1 replica |\n| --- | --- | --- | --- | --- |")
        print(f"| 1 | {args.cpus:g} | 2 | {one:.3f} | 1.00x |\n| 2 | {half:g} | 2 | {two:.3f} | {two / one:.2f}x |",
              flush=True)
    finally:
        child.close()
        serve.shutdown()
        ray.shutdown()
    print()
    print("\n".join(gpu_rows(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
