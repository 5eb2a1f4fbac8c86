"""Benchmark of generation through a Ray Serve worker on loopback, against the local child process.

One run, one machine (a local Ray cluster is started in this process):
  1. latency: the same request sequence through the local child-process engine (the
     baseline, ``bridge.live.childengine``) and through the worker's application on
     127.0.0.1 (1 replica of ``--cpus`` threads, as many as the child uses), both ways the
     worker can answer: the spectrogram image (PNG, decoded by this process's CPU) or audio
     (decoded on the worker, sent with the image). The paths take turns clip by clip. Per
     clip: seconds in all, in the model (text encoder, UNet, VAE), in decoding (and where),
     and the rest, "transport" (the child's pipe and pickles, or HTTP through Ray Serve's
     proxy, framing, PNG), with its difference to the child's; bytes sent and received;
  2. throughput: clips per second of 2 concurrent clients (live streams) against 1 replica
     of ``--cpus`` threads (its two streams share UNet batches) and 2 replicas of half as
     many each, deployed side by side and taking turns round by round (audio replies, so
     the clients do no decoding and the replicas do all the work);
  3. on a CUDA GPU only: batched throughput of 1, 2 and 4 concurrent same-shape streams in one
     replica's UNet batch (``Generator.answer``), against 1 stream; without a GPU it says so.

    .venv/bin/python bench/remote.py [--model tiny] [--clips 4] [--bars 2] [--steps 10] [--cpus 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
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


MODEL_STAGES = ("inputs", "text_encoder", "unet", "vae")


@dataclass
class Tally:
    """Per-clip seconds of one path: total, model stages, decode, and the rest (transport)."""

    total: list[float] = field(default_factory=list)
    model: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)

    def add(self, seconds: float, timings: dict[str, float]) -> None:
        self.total.append(seconds)
        self.model.append(sum(timings.get(k, 0.0) for k in MODEL_STAGES))
        self.decode.append(timings.get("codec", 0.0) + timings.get("client_codec", 0.0))

    def transport_ms(self) -> float:
        """Median of total - model - decode per clip: pipes or HTTP, serialisation, queues."""
        return 1000 * statistics.median(t - m - d for t, m, d in zip(self.total, self.model, self.decode))


def measure(engines: dict[str, Any], batch: list[GenerationRequest]) -> dict[str, Tally]:
    """Per-clip tallies of each engine (after one warm-up clip each), the engines taking
    turns clip by clip so that a busy machine slows them alike."""
    tallies = {name: Tally() for name in engines}
    for engine in engines.values():
        engine.generate(batch[0], batch[0].num_samples(RATE), RATE)
    for request in batch:
        for name, engine in engines.items():
            began = time.perf_counter()
            clip = engine.generate(request, request.num_samples(RATE), RATE)
            tallies[name].add(time.perf_counter() - began, clip.timings)
    return tallies


def latency_rows(child: Any, url: str, batch: list[GenerationRequest]) -> list[str]:
    """The baseline row and one row per reply kind through the worker."""
    remotes = {returns: RemoteEngine(url, returns=returns) for returns in ("image", "audio")}
    tallies = measure({"child": child, **remotes}, batch)
    base = tallies["child"]
    rows = [_row("local child process (baseline)", base, base, "child", 0, 0)]
    for returns, engine in remotes.items():
        where = "worker" if returns == "audio" else "client"
        rows.append(_row(f"worker on loopback, returns {returns}", tallies[returns], base, where,
                         engine.bytes_sent / engine.calls, engine.bytes_received / engine.calls))
    return rows


def _row(name: str, tally: Tally, base: Tally, where: str, sent: float, received: float) -> str:
    med = statistics.median
    return (f"| {name} | {med(tally.total):.3f} | {med(tally.model):.3f} | {med(tally.decode):.3f} ({where}) | "
            f"{tally.transport_ms():.0f} | {tally.transport_ms() - base.transport_ms():+.0f} | "
            f"{sent:,.0f} | {received:,.0f} |")


def throughput(urls: dict[str, str], batch_of: Callable[[int], list[GenerationRequest]], clients: int,
               rounds: int) -> dict[str, float]:
    """Median clips per second of ``clients`` concurrent clients, per application, the
    applications taking turns round by round (a busy machine slows them alike)."""
    rates: dict[str, list[float]] = {name: [] for name in urls}
    for name, url in urls.items():
        engine = RemoteEngine(url, returns="audio")
        warm = batch_of(0)[0]
        engine.generate(warm, warm.num_samples(RATE), RATE)
    for index in range(rounds):
        for name, url in urls.items():
            rates[name].append(_round(url, [batch_of(1000 * index + 100 * c) for c in range(clients)]))
    return {name: statistics.median(values) for name, values in rates.items()}


def _round(url: str, batches: list[list[GenerationRequest]]) -> float:
    engines = [RemoteEngine(url, returns="audio") for _ in batches]
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
    parser.add_argument("--cpus", type=int, default=2, help="CPUs (torch threads) per application")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (2 clients x 2 clips each)")
    args = parser.parse_args()
    batch = requests(args, args.clips)
    seconds = batch[0].num_samples(RATE) / RATE
    print(f"model {args.model}, {args.bars:g} bars at 120 BPM ({seconds:.2f} s clips), {args.steps} steps, "
          f"{args.clips} clips per row, replicas of {args.cpus} CPUs in all per application, on this machine", flush=True)
    import ray
    from ray import serve

    from bridge.remote.serving import deploy

    # Logical CPUs: room for the 1-replica application (all --cpus) and the 2-replica one
    # (half each) side by side; each replica runs torch on as many threads as it reserves.
    ray.init(num_cpus=2 * args.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    # The child at the bench's own priority, as the Ray replicas run (serve's default,
    # SCHED_IDLE, would measure the other jobs on a shared machine instead).
    child = ChildProcessEngine(partial(load_engine, args.model, "cpu"), nice=None, policy=None)
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        deploy(WorkerOptions(args.model, "cpu", replicas=1, cpus_per_replica=args.cpus), "127.0.0.1", port,
               "one", "/one")
        deploy(WorkerOptions(args.model, "cpu", replicas=2, cpus_per_replica=args.cpus / 2), "127.0.0.1", port,
               "two", "/two")
        rows = latency_rows(child.start(), f"{url}/one", batch)
        child.close()
        print("\n| path | s/clip | model s | decode s (where) | transport ms | vs child ms | bytes sent/clip "
              "| bytes received/clip |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows), flush=True)
        rates = throughput({"one": f"{url}/one", "two": f"{url}/two"}, partial(requests, args, 2), 2, args.rounds)
        half = args.cpus / 2
        print("\n| replicas | CPUs (threads) each | clients | clips/s | vs 1 replica |\n| --- | --- | --- | --- | --- |")
        print(f"| 1 | {args.cpus:g} | 2 | {rates['one']:.3f} | 1.00x |\n"
              f"| 2 | {half:g} | 2 | {rates['two']:.3f} | {rates['two'] / rates['one']:.2f}x |", flush=True)
    finally:
        child.close()
        serve.shutdown()
        ray.shutdown()
    print()
    print("\n".join(gpu_rows(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
