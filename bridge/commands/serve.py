"""``riff-bridge serve``: generate loops and play them into JACK until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = "Play generated loops into JACK, N bars each on the bar grid, until interrupted."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("--model", default="fake",
                        help="fake (no model), tiny (small random model), a diffusers folder or hub id")
    parser.add_argument("--device", default="auto", help="model device: auto, cpu, cuda, mps")
    parser.add_argument("--bpm", type=float, default=120.0,
                        help="tempo when no JACK timebase master or MIDI clock sets one (20-400)")
    parser.add_argument("--bars", type=int, default=2, help="loop length in bars (1-16)")
    parser.add_argument("--prompt", default=None, help="starting prompt (default: the control default)")
    parser.add_argument("--seed", type=int, default=None, help="starting seed")
    parser.add_argument("--steps", type=int, default=None, help="diffusion steps per clip")
    parser.add_argument("--jack-name", default="riff-bridge", help="JACK client name")
    parser.add_argument("--server", default=None, help="JACK server name (default: $JACK_DEFAULT_SERVER)")
    parser.add_argument("--connect", nargs="+", default=(), metavar="PORT",
                        help="connect out_L/out_R to these ports (or to a client's audio inputs)")
    parser.add_argument("--midi-from", nargs="+", default=(), metavar="PORT",
                        help="connect these MIDI ports to midi_in (clock and control)")
    parser.add_argument("--audio-in", action="store_true", help="also register in_L/in_R")
    parser.add_argument("--timebase-master", action="store_true",
                        help="become JACK timebase master (at --bpm) when there is none")
    parser.add_argument("--free-run", action="store_true",
                        help="keep playing on our own clock while the transport is stopped")
    parser.add_argument("--crossfade-ms", type=float, default=5.0, help="joint crossfade (ms)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the model in a thread of the JACK process instead of a child process "
                             "(the child keeps the model off the realtime thread's GIL)")
    parser.add_argument("--status-every", type=float, default=10.0,
                        help="log a status line every N seconds (0: never)")


def run(args: argparse.Namespace) -> int:
    """Start the live engine, wait for SIGINT/SIGTERM, stop cleanly; returns 0."""
    import logging
    import signal
    import threading

    from bridge.live.engine import LiveEngine, LiveOptions
    from bridge.live.jackoutput import JackOutput
    from bridge.state import StateStore

    log = logging.getLogger("riff-bridge.serve")
    store = StateStore()
    store.update(_initial_state(args))
    engine = _engine(args)
    output = JackOutput(args.jack_name, args.server, args.audio_in, args.connect, args.midi_from,
                        args.timebase_master)
    options = LiveOptions(free_run=args.free_run, crossfade_ms=args.crossfade_ms)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    live = LiveEngine(store, engine, output, options,
                      on_error=lambda err: log.warning("generation failed: %s", err))
    with _closing(engine), live:
        log.info("serving as JACK client %r (%d Hz, %d frames), %d bars at %.2f BPM; Ctrl-C to stop",
                 output.name, output.sample_rate, output.block_size, args.bars, args.bpm)
        _wait(stop, live, output, args.status_every, log)
    print(f"stopped: {live.metrics().summary()}")
    return 0 if not output.shut_down else 1


def _initial_state(args: argparse.Namespace) -> dict[str, object]:
    """Control values from the command line (validated by the store)."""
    values: dict[str, object] = {"bpm": args.bpm, "bars": args.bars}
    if args.prompt is not None:
        values.update(prompt_a=args.prompt, prompt_b=args.prompt)
    if args.seed is not None:
        values.update(seed_a=args.seed, seed_b=args.seed + 1)
    if args.steps is not None:
        values["steps"] = args.steps
    return values


def _wait(stop: "object", live: "object", output: "object", every: float, log: "object") -> None:
    """Block until ``stop`` is set or the JACK server goes away, logging status lines."""
    import time

    last = time.monotonic()
    while not stop.wait(0.2):  # type: ignore[attr-defined]
        if output.shut_down:  # type: ignore[attr-defined]
            log.error("the JACK server shut down")  # type: ignore[attr-defined]
            return
        if every > 0 and time.monotonic() - last >= every:
            last = time.monotonic()
            log.info("%s", live.metrics().summary())  # type: ignore[attr-defined]


def _engine(args: argparse.Namespace) -> object:
    """The engine: in this process, or (default) in a started child process."""
    if args.in_process:
        return load_engine(args.model, args.device)
    from functools import partial

    from bridge.live.childengine import ChildProcessEngine
    from bridge.live.priority import DEFAULT_NICE

    return ChildProcessEngine(partial(load_engine, args.model, args.device), nice=DEFAULT_NICE).start()


def _closing(engine: object) -> "object":
    """A context manager closing ``engine`` when it can be closed."""
    import contextlib

    return contextlib.closing(engine) if hasattr(engine, "close") else contextlib.nullcontext()


def load_engine(model: str, device: str = "auto") -> object:
    """``fake`` -> FakeEngine; anything else -> the diffusion engine (imported lazily)."""
    if model == "fake":
        from bridge.engine.fake import FakeEngine

        return FakeEngine()
    try:
        from bridge.engine.diffusion import DiffusionEngine
    except ImportError as err:
        from bridge.errors import ModelUnavailableError

        raise ModelUnavailableError(
            f"--model {model}: the diffusion engine is not available ({err}); use --model fake") from None
    return DiffusionEngine(model, device=device)
