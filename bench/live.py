"""Benchmark of the live engine: xruns and callback time, idle and under full CPU load.

Starts a private jackd (dummy backend, SCHED_FIFO when root, 44.1 kHz, ``--period`` frames),
runs riff-bridge's live engine free-running with the model generating clip after clip, and
measures two phases of ``--seconds`` each in the same run: the baseline (no extra load), then
the same with one busy-loop process per core. Prints one table row per phase: xruns, our
callback's run time (max / mean / p99), how late in the cycle it began at worst (scheduling
plus GIL wait), clips made, seconds per clip, real-time factor, late clips, worker busy share.
Two reference rows follow: a do-nothing Python JACK client on the same server, without and
with the same load, i.e. the floor this machine, CPython and the dummy backend allow.

    .venv/bin/python bench/live.py [--seconds 120] [--reference 60] [--model tiny|fake] [--period 256]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.engine.factory import load_engine  # noqa: E402
from bridge.live.childengine import ChildProcessEngine  # noqa: E402
from bridge.live.engine import LiveEngine, LiveOptions  # noqa: E402
from bridge.live.jackoutput import JackOutput  # noqa: E402
from bridge.live.priority import DEFAULT_NICE, MODEL_NICE  # noqa: E402
from bridge.live.processor import HISTOGRAM_NS  # noqa: E402
from bridge.live.server import JackServer  # noqa: E402
from bridge.state import ControlState, StateStore  # noqa: E402


@dataclass(frozen=True)
class Phase:
    """What one measured phase saw."""

    name: str
    seconds: float
    blocks: int
    xruns: int
    callback_max_us: float
    callback_mean_us: float
    callback_p99_us: float
    start_delay_max_us: float
    clips: int
    seconds_per_clip: float
    late: int
    busy: float

    def row(self) -> str:
        """One table row ("-" where the phase had no engine)."""
        timing = (f"{self.callback_max_us:.0f} | {self.callback_mean_us:.0f} | {self.callback_p99_us:.0f}"
                  if self.callback_max_us == self.callback_max_us else "- | - | -")
        engine = (f"{self.clips} | {self.seconds_per_clip:.2f} | {self.seconds_per_clip / CLIP_SECONDS:.2f} | "
                  f"{self.late} | {self.busy:.0%}" if self.clips else "- | - | - | - | -")
        return (f"| {self.name} | {self.seconds:.0f} | {self.blocks} | {self.xruns} | {timing} | "
                f"{self.start_delay_max_us:.0f} | {engine} |")


HEADER = ("| run | s | blocks | xruns | callback max us | mean us | p99 us | start delay max us | "
          "clips | s/clip | RTF | late | worker busy |\n" + "|---" * 13 + "|")
CLIP_SECONDS = 2.0  # one bar of 4/4 at 120 BPM


def _spin() -> None:
    while True:
        pass


def measure(live: LiveEngine, name: str, seconds: float) -> Phase:
    """Run ``seconds`` and report the deltas of the engine's counters."""
    proc = live.processor
    assert proc is not None
    before, hist_before = live.metrics(), list(proc.callback_histogram)
    total_before, blocks_before = proc.callback_ns_total, proc.blocks
    proc.callback_ns_max, proc.start_delay_max = 0, 0
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    after, hist = live.metrics(), [b - a for a, b in zip(hist_before, proc.callback_histogram)]
    blocks = proc.blocks - blocks_before
    clips = after.clips_generated - before.clips_generated
    generated = after.generation_seconds_mean * after.clips_generated - before.generation_seconds_mean * before.clips_generated
    return Phase(name, wall, blocks, after.xruns - before.xruns, proc.callback_ns_max / 1000,
                 (proc.callback_ns_total - total_before) / max(1, blocks) / 1000, _p99(hist),
                 proc.start_delay_max * 1e6 / proc.sample_rate, clips, generated / clips if clips else 0.0,
                 after.late_clips - before.late_clips, generated / wall)


def reference(name: str, seconds: float, load: int) -> Phase:
    """A do-nothing Python JACK client (no other busy thread) for ``seconds``: the floor of
    what CPython + JACK reach on this machine, with ``load`` busy loops running."""
    import jack
    import numpy  # noqa: F401  (get_array imports it on first use: not in the callback)

    client = jack.Client("riff-bridge-reference", no_start_server=True)
    port = client.outports.register("out")
    counts = {"xruns": 0, "delay": 0, "blocks": 0}

    def process(frames: int) -> None:
        counts["delay"] = max(counts["delay"], client.frames_since_cycle_start)
        counts["blocks"] += 1
        port.get_array().fill(0.0)

    client.set_process_callback(process)
    client.set_xrun_callback(lambda _: counts.__setitem__("xruns", counts["xruns"] + 1))
    with client, _busy_loops(load):
        time.sleep(seconds)
    return Phase(name, seconds, counts["blocks"], counts["xruns"], float("nan"), float("nan"), float("nan"),
                 counts["delay"] * 1e6 / 44100, 0, 0.0, 0, 0.0)


class _busy_loops:
    """Context manager running ``count`` busy-loop processes."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.spinners = [context.Process(target=_spin, daemon=True) for _ in range(count)]

    def __enter__(self) -> "_busy_loops":
        for spinner in self.spinners:
            spinner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for spinner in self.spinners:
            spinner.terminate()
            spinner.join()


def _p99(histogram: list[int]) -> float:
    total, seen = sum(histogram), 0
    for bucket, count in enumerate(histogram):
        seen += count
        if total and seen >= 0.99 * total:
            return (bucket + 1) * HISTOGRAM_NS / 1000
    return 0.0


def run(engine: Any, store: StateStore, args: argparse.Namespace, cores: int) -> list[Phase]:
    """The measured phases: the engine without and with load, then the reference client."""
    with JackServer(period=args.period) as server:
        os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        options = LiveOptions(free_run=True, nice=args.nice)
        with LiveEngine(store, engine, JackOutput("riff-bridge-bench"), options) as live:
            live.wait_for(lambda m: m.clips_started >= 1, 300)
            phases = [measure(live, "riff-bridge, no load", args.seconds)]
            with _busy_loops(cores):
                phases.append(measure(live, f"riff-bridge, {cores} busy loops", args.seconds))
        if args.reference > 0:
            phases.append(reference("do-nothing client, no load", args.reference, 0))
            phases.append(reference(f"do-nothing client, {cores} busy loops", args.reference, cores))
    return phases


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each phase")
    parser.add_argument("--model", default="tiny", help="tiny, fake, or a diffusers model")
    parser.add_argument("--period", type=int, default=256, help="JACK period in frames")
    parser.add_argument("--steps", type=int, default=150, help="diffusion steps per clip (tiny: ~1.5 s)")
    parser.add_argument("--reference", type=float, default=60.0,
                        help="seconds of each do-nothing-client reference phase (0: skip)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the model in a thread of the JACK process (default: a child process)")
    parser.add_argument("--nice", type=int, default=DEFAULT_NICE,
                        help="nice value of the engine's worker and monitor threads (needs root below 0)")
    parser.add_argument("--child-nice", type=int, default=MODEL_NICE,
                        help="nice value of the model's child process")
    args = parser.parse_args(argv)
    engine: Any = (load_engine(args.model, "cpu") if args.in_process
                   else ChildProcessEngine(partial(load_engine, args.model, "cpu"), nice=args.child_nice).start())
    store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="organ", prompt_b="organ",
                                    steps=args.steps, denoising=1.0))
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.2f} before the run; "
          f"jackd dummy 44100 Hz period {args.period}, {'realtime' if os.geteuid() == 0 else 'no realtime'}; "
          f"model {args.model} {'in the JACK process' if args.in_process else 'in a child process'}, "
          f"{args.steps} steps, 1-bar clips at 120 BPM; worker/monitor nice {args.nice}, "
          f"model process nice {args.child_nice}")
    try:
        phases = run(engine, store, args, cores)
    finally:
        if hasattr(engine, "close"):
            engine.close()
    print(HEADER)
    for phase in phases:
        print(phase.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
