"""Benchmark of the live engine's realtime path: xruns split the way jackd attributes them.

For each ``--periods`` value it starts a private jackd (dummy backend, SCHED_FIFO when root,
44.1 kHz), puts a C reference client in the same graph (``jack_metro``, from jackd2), runs
riff-bridge's live engine free-running with the model generating clip after clip, and
measures two phases of ``--seconds`` each: generating alone, then generating with one
busy-loop process per core. Each row splits the phase's xruns by jackd's own log:

- ``ours Running``: riff-bridge's callback had not finished, split by the CPU time its
  realtime thread used (:mod:`bridge.live.overruns`) into ``overrun`` (it was running: its
  own fault) and ``stall`` (it was stopped mid-callback: the machine);
- ``ours Triggered``: riff-bridge was woken but never got the CPU in time (the machine);
- ``metro``: the C reference client, late for either reason;
- ``driver``: the dummy driver's own cycle started late.

It also prints the callback time per block measured inside our callback (p50, p99.9 and max,
in microseconds), clips made and late clips.

    .venv/bin/python bench/live.py [--periods 64,128,256] [--seconds 60] [--model tiny]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.engine.factory import load_engine  # noqa: E402
from bridge.live.childengine import ChildProcessEngine  # noqa: E402
from bridge.live.engine import LiveEngine, LiveOptions  # noqa: E402
from bridge.live.jackoutput import JackOutput  # noqa: E402
from bridge.live.overruns import watch_core  # noqa: E402
from bridge.live.server import JackServer  # noqa: E402
from bridge.state import ControlState, StateStore  # noqa: E402

CLIENT = "riff-bridge"
METRO = "metro"


@dataclass(frozen=True)
class Phase:
    """What one measured phase saw."""

    period: int
    name: str
    seconds: float
    blocks: int
    ours_running: int
    ours_overrun: int
    ours_triggered: int
    metro: int
    driver: int
    p50_us: float
    p999_us: float
    max_us: float
    clips: int
    late: int

    def row(self) -> str:
        """One table row."""
        return (f"| {self.period} | {self.name} | {self.seconds:.0f} | {self.blocks} | {self.ours_running} | "
                f"{self.ours_overrun} | {self.ours_running - self.ours_overrun} | {self.ours_triggered} | "
                f"{self.metro} | {self.driver} | {self.p50_us:.1f} | "
                f"{self.p999_us:.1f} | {self.max_us:.1f} | {self.clips} | {self.late} |")


HEADER = ("| period | phase | s | blocks | ours Running | of which overrun | of which stall | ours Triggered | "
          "jack_metro | driver | callback p50 us | p99.9 us | max us | clips | late |\n" + "|---" * 15 + "|")


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` busy-loop processes while the block runs."""
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=_spin, daemon=True) for _ in range(count)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()


@contextlib.contextmanager
def metronome(server: JackServer) -> Iterator[None]:
    """``jack_metro`` (a C client) in the graph, as the reference."""
    process = subprocess.Popen(["jack_metro", "-b", "120", "-n", METRO], env=server.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(5)


def split(before: dict[str, int], after: dict[str, int]) -> tuple[int, int, int, int]:
    """(ours Running, ours Triggered, metro any state, driver) xruns between two log reads."""
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    metro = sum(count for key, count in delta.items() if key.startswith(METRO + " "))
    return (delta.get(f"{CLIENT} Running", 0), delta.get(f"{CLIENT} Triggered", 0), metro,
            delta.get("driver", 0))


def measure(live: LiveEngine, server: JackServer, name: str, seconds: float) -> Phase:
    """Run ``seconds`` and report the deltas of jackd's attribution and the engine's counters."""
    core = live.core
    before, causes = live.metrics(), server.xrun_causes()
    core.reset_callback_times()
    started = time.monotonic()
    with watch_core(core, CLIENT, server, server.period, server.sample_rate) as watch:
        time.sleep(seconds)
        wall = time.monotonic() - started
        time.sleep(0.3)  # let jackd write its log lines for the last cycles
    after = live.metrics()
    times = core.callback_times()
    running, triggered, metro, driver = split(causes, server.xrun_causes())
    return Phase(server.period, name, wall, times.blocks, running, watch.report().ours, triggered, metro, driver,
                 times.percentile(0.5), times.percentile(0.999), times.max_us,
                 after.clips_generated - before.clips_generated, after.late_clips - before.late_clips)


def run_period(engine: Any, store: StateStore, period: int, seconds: float, cores: int) -> list[Phase]:
    """Both phases at one JACK period."""
    with JackServer(period=period) as server, metronome(server):
        os.environ.update(JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        with LiveEngine(store, engine, JackOutput(CLIENT), LiveOptions(free_run=True)) as live:
            time.sleep(2.0)  # the worker starts generating at once; measure from there
            phases = [measure(live, server, "generating", seconds)]
            with busy_loops(cores):
                phases.append(measure(live, server, f"generating + {cores} busy loops", seconds))
    return phases


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", default="64,128,256", help="JACK periods in frames, comma separated")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--model", default="tiny", help="tiny, fake, or a diffusers model")
    parser.add_argument("--steps", type=int, default=150, help="diffusion steps per clip (tiny: ~1.5 s)")
    parser.add_argument("--child-nice", type=int, default=0,
                        help="nice value of the model process (serve uses 10 under SCHED_BATCH; 0 here "
                             "keeps it generating on a busy machine)")
    args = parser.parse_args(argv)
    periods = [int(p) for p in args.periods.split(",")]
    engine = ChildProcessEngine(partial(load_engine, args.model, "cpu"), nice=args.child_nice,
                                policy="normal").start()
    store = StateStore(ControlState(bpm=120.0, bars=1, prompt_a="organ", prompt_b="organ",
                                    steps=args.steps, denoising=1.0))
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.2f} before the run; jackd dummy "
          f"44100 Hz, {'realtime' if os.geteuid() == 0 else 'no realtime'}; model {args.model} in a child "
          f"process, {args.steps} steps, 1-bar clips at 120 BPM; reference: jack_metro in the same graph")
    try:
        phases = [phase for period in periods for phase in run_period(engine, store, period, args.seconds, cores)]
    finally:
        engine.close()
    print(HEADER)
    for phase in phases:
        print(phase.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
