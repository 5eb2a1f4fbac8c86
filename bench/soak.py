"""Soak: a live session under random controls for a while; memory growth, xruns, late clips.

Runs the same Session as ``riff-bridge serve`` (tiny model by default, private JACK server
when none runs, riff-bridge as timebase master, transport rolling) and sends a random OSC
control every ``--interval`` seconds (``--controls`` picks the kinds). Memory is the resident
set of this process and its children, sampled every second; growth compares the median of
the last tenth of the run with the median of its second tenth (caches warm), a baseline from
the same run; medians, because one sample can land on a generation's transient peak. The
floor (the lowest sample of each window: memory kept between generations) is reported too,
as what a leak would raise. With a
private server, jackd's own log attributes each xrun (driver late, or which client).

    .venv/bin/python bench/soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.live.server import PRIVATE_PERIOD, ensure_server  # noqa: E402

PROMPTS = ("dusty lo-fi drums", "bright synthwave arpeggio", "deep house chords", "jazz trio brushes",
           "minimal techno kick", "ambient pads with rain")


def rss_kib() -> tuple[int, int]:
    """Resident memory (KiB, from /proc) of this process, and of its children together."""
    import os

    return _rss(os.getpid()), sum(_rss(pid) for pid in _children(os.getpid()))


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


#: Seconds between memory samples.
SAMPLE_SECONDS = 1.0

#: Control kinds and their weights (alpha moves most).
KINDS = ("alpha", "alpha", "alpha", "prompt", "seed", "bpm", "bars", "denoising", "guidance", "volume",
         "negative", "garbage")


def random_control(rng: random.Random, kinds: tuple[str, ...] = KINDS) -> tuple[str, object]:
    """One random (address, value) a performer might send, of one of ``kinds``."""
    choice = rng.choice(kinds)
    return {
        "alpha": ("/riff/set/alpha", round(rng.random(), 3)),
        "prompt": (rng.choice(("/riff/set/prompt_a", "/riff/set/prompt_b")), rng.choice(PROMPTS)),
        "seed": (rng.choice(("/riff/set/seed_a", "/riff/set/seed_b")), rng.randrange(1 << 31)),
        "bpm": ("/riff/set/bpm", float(rng.randrange(90, 141))),
        "bars": ("/riff/set/bars", rng.choice((1, 2, 2, 4))),
        "denoising": ("/riff/set/denoising", round(rng.uniform(0.5, 0.9), 2)),
        "guidance": ("/riff/set/guidance", round(rng.uniform(4, 9), 1)),
        "volume": ("/riff/set/volume", round(rng.uniform(0.5, 1.0), 2)),
        "negative": ("/riff/set/negative", rng.choice(("", "vocals", "noise"))),
        "garbage": ("/riff/set/alpha", "not a number"),
    }[choice]


def _window(samples: list[tuple[float, tuple[int, int]]], lo: float, hi: float,
            pick: Any = statistics.median) -> tuple[float, float]:
    """``pick`` (median, min...) of (this process, children) resident KiB over samples in [lo, hi) s."""
    window = [kib for t, kib in samples if lo <= t < hi] or [samples[-1][1]]
    return pick(k[0] for k in window), pick(k[1] for k in window)


def soak(seconds: float, model: str, interval: float, seed: int,
         kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """Run the session; returns the figures for the table."""
    from pythonosc.udp_client import SimpleUDPClient

    from bridge.engine.factory import start_engine
    from bridge.control.surfaces import ControlSurfaces
    from bridge.live.engine import LiveOptions
    from bridge.live.jackoutput import JackOutput
    from bridge.session import Session, SessionParts
    from bridge.state import ControlState, StateStore

    store = StateStore(ControlState(steps=12, bars=2, seed_image="grid"))
    surfaces = ControlSurfaces(store, osc_port=0, midi=None, controller=None)
    output = JackOutput("riff-soak", timebase_master=True)
    rng, samples, events = random.Random(seed), [], []
    sent: list[tuple[float, str]] = []
    with Session(SessionParts(store, start_engine(model), output, LiveOptions(prime_seconds=120.0), surfaces)) as session:
        output.client.transport_start()
        osc = SimpleUDPClient(*surfaces.osc.address)
        began = time.monotonic()
        next_control = next_sample = began
        while (now := time.monotonic()) - began < seconds:
            session.tick()
            if now >= next_control:
                address, value = random_control(rng, kinds)
                osc.send_message(address, value)
                sent.append((now - began, f"{address.rsplit('/', 1)[-1]}={value}"))
                next_control = now + interval
            xruns = session.live.core.counter("xruns")
            if xruns != (events[-1][1] if events else 0):
                events.append((now - began, xruns, [c for t, c in sent if t > now - began - 1.0]))
            if now >= next_sample:
                samples.append((now - began, rss_kib()))
                next_sample = now + SAMPLE_SECONDS
            time.sleep(0.05)
        metrics = session.live.metrics()
    base, end = _window(samples, seconds / 10, seconds / 5), _window(samples, seconds * 0.9, seconds + 1)
    floor_base = sum(_window(samples, seconds / 10, seconds / 5, min))
    floor_end = sum(_window(samples, seconds * 0.9, seconds + 1, min))
    return {"seconds": seconds, "rss_start_mib": sum(samples[0][1]) / 1024, "rss_base_mib": sum(base) / 1024,
            "rss_end_mib": sum(end) / 1024, "rss_peak_mib": max(sum(k) for _, k in samples) / 1024,
            "growth_pct": 100.0 * (sum(end) - sum(base)) / sum(base),
            "parent_growth_pct": 100.0 * (end[0] - base[0]) / base[0],
            "child_growth_pct": 100.0 * (end[1] - base[1]) / base[1] if base[1] else 0.0,
            "floor_growth_pct": 100.0 * (floor_end - floor_base) / floor_base,
            "clips_generated": metrics.clips_generated, "clips_played": metrics.clips_started,
            "late_clips": metrics.late_clips, "xruns": metrics.xruns, "failures": metrics.failures,
            "callback_us_max": metrics.callback_us_max, "callback_us_mean": metrics.callback_us_mean,
            "rtf": metrics.real_time_factor, "xrun_events": events, "samples": samples}


def write_trace(path: Path, samples: list[tuple[float, tuple[int, int]]]) -> None:
    """The memory samples as CSV (refuses to replace an existing file)."""
    with path.open("x") as out:
        out.write("seconds,parent_kib,children_kib\n")
        out.writelines(f"{t:.1f},{parent},{children}\n" for t, (parent, children) in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between random controls")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--period", type=int, default=PRIVATE_PERIOD,
                        help=f"frames per period of the private JACK server (default {PRIVATE_PERIOD})")
    parser.add_argument("--trace", type=Path, default=None,
                        help="also write the memory samples (seconds, KiB this process, KiB children) as CSV")
    parser.add_argument("--controls", default=",".join(sorted(set(KINDS))),
                        help="comma-separated control kinds to send (default: all)")
    args = parser.parse_args()
    kinds = tuple(k for k in KINDS if k in args.controls.split(","))
    if not kinds:
        parser.error(f"--controls: expected some of {', '.join(sorted(set(KINDS)))}; got {args.controls!r}")
    if args.trace is not None and args.trace.exists():
        parser.error(f"--trace: expected a file that does not exist yet; got {str(args.trace)!r}")
    with ensure_server(period=args.period) as server:
        r = soak(args.seconds, args.model, args.interval, args.seed, kinds)
        causes = server.xrun_causes() if server is not None else None
        period = server.period if server is not None else "the running server's"
    if args.trace is not None:
        write_trace(args.trace, r["samples"])
    print(f"\nsoak: {r['seconds']:.0f} s, model {args.model}, a random control every {args.interval:g} s,"
          f" JACK period {period} frames")
    print(f"{'measure':<34} {'value':>12}")
    for name, key, fmt in (
        ("resident memory at start (MiB)", "rss_start_mib", "{:.1f}"),
        ("baseline, 10-20% of run (MiB)", "rss_base_mib", "{:.1f}"),
        ("end, last 10% of run (MiB)", "rss_end_mib", "{:.1f}"),
        ("peak (MiB)", "rss_peak_mib", "{:.1f}"),
        ("growth end / baseline (%)", "growth_pct", "{:+.2f}"),
        ("  of which: this process (%)", "parent_growth_pct", "{:+.2f}"),
        ("  model process (%)", "child_growth_pct", "{:+.2f}"),
        ("floor growth, lowest samples (%)", "floor_growth_pct", "{:+.2f}"),
        ("clips generated", "clips_generated", "{:d}"),
        ("clips played", "clips_played", "{:d}"),
        ("late clips", "late_clips", "{:d}"),
        ("xruns", "xruns", "{:d}"),
        ("generation failures", "failures", "{:d}"),
        ("callback max (us)", "callback_us_max", "{:.0f}"),
        ("callback mean (us)", "callback_us_mean", "{:.1f}"),
        ("generation real-time factor", "rtf", "{:.3f}"),
    ):
        print(f"{name:<34} {fmt.format(r[key]):>12}")
    if causes is not None:
        told = ", ".join(f"{name} {count}" for name, count in sorted(causes.items())) or "none"
        print(f"{'xruns by jackd log (cause: count)':<34} {told}")
    if r["xrun_events"]:
        print("\nxruns (seconds into the run, total, controls sent in the second before):")
        for at, total, controls in r["xrun_events"]:
            print(f"  {at:7.2f} s  {total:3d}  {', '.join(controls)}")


if __name__ == "__main__":
    main()
