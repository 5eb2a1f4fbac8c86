"""``riff-bridge serve``: the whole bridge as one process, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = "Play generated loops into JACK on the bar grid, driven by OSC and MIDI, until interrupted."
#: How long the JACK client waits for the first clip before it activates.
PRIME_SECONDS = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options (and the control surfaces' ones)."""
    from bridge.control.surfaces import add_arguments as add_control_arguments
    from bridge.remote.options import add_engine_arguments

    parser.add_argument("--config", default=None, help="TOML file of option defaults ([serve] table)")
    parser.add_argument("--model", default="tiny",
                        help="tiny (small random model), fake (no model), a diffusers folder or hub id")
    from bridge.commands.render import add_device_arguments

    add_device_arguments(parser)
    parser.add_argument("--bpm", type=float, default=120.0,
                        help="tempo when no JACK timebase master or MIDI clock sets one (20-400)")
    parser.add_argument("--bars", type=int, default=2, help="loop length in bars (1-16)")
    parser.add_argument("--prompt", default=None, help="starting prompt (default: the control default)")
    parser.add_argument("--seed", type=int, default=None, help="starting seed")
    parser.add_argument("--steps", type=int, default=None, help="diffusion steps per clip")
    parser.add_argument("--jack-name", default="riff-bridge", help="JACK client name")
    parser.add_argument("--server", default=None, help="JACK server name (default: $JACK_DEFAULT_SERVER)")
    parser.add_argument("--connect", nargs="+", default=[], metavar="PORT",
                        help="connect out_L/out_R to these ports (or to a client's audio inputs)")
    parser.add_argument("--midi-from", nargs="+", default=[], metavar="PORT",
                        help="connect these MIDI ports to midi_in (clock and control)")
    parser.add_argument("--audio-in", action="store_true",
                        help="also register in_L/in_R and keep the last loops played into them "
                             "(source = input restyles them; /riff/input/capture freezes one)")
    parser.add_argument("--input-threshold-db", type=float, default=-50.0,
                        help="input loops below this RMS level (dBFS) are not restyled (default -50)")
    parser.add_argument("--seeds-dir", default=None,
                        help="folder for captured seed images (default ~/.config/riff-bridge/seeds)")
    parser.add_argument("--timebase-master", action="store_true",
                        help="become JACK timebase master (at --bpm) when there is none")
    parser.add_argument("--free-run", action="store_true",
                        help="keep playing on our own clock while the transport is stopped")
    parser.add_argument("--crossfade-ms", type=float, default=5.0, help="joint crossfade (ms)")
    parser.add_argument("--record", default=None, metavar="DIR",
                        help="save every played clip (WAV + spectrogram PNG + JSON) into DIR")
    parser.add_argument("--in-process", action="store_true",
                        help="run the model in a thread of the JACK process instead of a child process "
                             "(the child keeps the model off the realtime thread's GIL)")
    parser.add_argument("--status-every", type=float, default=10.0,
                        help="seconds between status log lines when not on a terminal (0: never)")
    parser.add_argument("--inject-faults", type=int, default=0, metavar="N",
                        help="testing: make every Nth generation fail (exception, NaN, out of memory)")
    _add_link_arguments(parser)
    add_control_arguments(parser)
    add_engine_arguments(parser)  # remote worker (--engine URL, --token)

    from bridge.web.view import add_arguments as add_web_arguments  # live view (bridge/web)

    add_web_arguments(parser)
    parser.set_defaults(parser=parser)


def _add_link_arguments(parser: argparse.ArgumentParser) -> None:
    """Ableton Link (optional extra riff-bridge[link])."""
    group = parser.add_argument_group("Ableton Link (pip install 'riff-bridge[link]')")
    group.add_argument("--link", action="store_true",
                       help="join the Ableton Link session as a tempo source (after a JACK timebase master "
                            "and MIDI clock, before our own clock); with --timebase-master our tempo "
                            "changes go to the session (and riff-bridge does not take the JACK timebase)")
    group.add_argument("--link-quantum", type=int, default=4, metavar="BEATS",
                       help="beats per bar of the Link grid, Link's quantum (1-32, default 4)")
    group.add_argument("--link-start-stop", action="store_true",
                       help="start/stop sync: play while the Link session plays (the JACK transport "
                            "starts and stops with it)")
    group.add_argument("--link-latency-ms", type=float, default=0.0, metavar="MS",
                       help="output latency JACK does not report (converter, speaker DSP), added to the "
                            "outputs' JACK latency when lining up with Link (0-1000, default 0)")


def run(args: argparse.Namespace) -> int:
    """Build the session, serve until a signal (or the JACK server is gone for good), stop."""
    import signal
    import threading

    from bridge.session import Session

    if args.config:
        from bridge.config import apply_config, read_config

        apply_config(args, args.parser, read_config(args.config))
    if getattr(args, "link", False):  # fail before the model warms up, not after
        from bridge.errors import check_int, check_range
        from bridge.live.link import require_link

        require_link()
        check_int("--link-quantum", args.link_quantum, 1, 32)
        check_range("--link-latency-ms", args.link_latency_ms, 0.0, 1000.0)
    stop, serving = threading.Event(), threading.Event()

    def on_signal(number: int, frame: object) -> None:
        stop.set()
        if not serving.is_set():  # loading or warming up: abandon whatever blocks
            raise StartInterrupted(signal.Signals(number).name)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    try:
        session = Session(_parts(args))
        session.parts.surfaces = _surfaces(args, session)
        _attach_capture(args, session)
        web = _web(args, session)  # browser live view + OSCQuery (bridge/web), up while the model warms up
        link = None  # Link: set with --link
        try:
            session.start()
            link = _start_link(args, session)
            serving.set()
            if web is not None:
                web.announce()  # type: ignore[attr-defined]
            _announce(session)
            _serve(session, stop, args.status_every, link)
        finally:
            serving.set()  # from here a signal only asks to stop: let stop() finish
            if link is not None:
                link.stop()
            session.stop()
            if web is not None:
                web.stop()  # type: ignore[attr-defined]
    except StartInterrupted as signal_name:
        print(f"stopped by {signal_name} while starting")
        return 0
    print(f"stopped: {session.last_metrics.summary() if session.last_metrics else 'no metrics'}")
    return 0


class StartInterrupted(BaseException):
    """A signal arrived before the session was serving (model loading or warm-up)."""


def _parts(args: argparse.Namespace) -> "object":
    """Everything the session runs, from the options."""
    from bridge.engine.factory import start_engine
    from bridge.live.engine import LiveOptions
    from bridge.live.jackoutput import JackOutput
    from bridge.recording import ClipRecorder
    from bridge.session import SessionParts
    from bridge.state import StateStore

    store = StateStore()
    store.update(_initial_state(args))
    from bridge.remote.options import remote_engine

    engine = remote_engine(args) or start_engine(args.model, args.device, args.in_process, args.inject_faults,
                                                 args.dtype, args.compile)
    # Link: no JACK timebase (our BBT would outrank Link's grid); --timebase-master then
    # means our tempo changes go to the Link session.
    output = JackOutput(args.jack_name, args.server, args.audio_in, args.connect, args.midi_from,
                        args.timebase_master and not getattr(args, "link", False))
    options = LiveOptions(free_run=args.free_run, crossfade_ms=args.crossfade_ms, prime_seconds=PRIME_SECONDS)
    recorder = ClipRecorder(args.record) if args.record else None
    parts = SessionParts(store, engine, output, options, None, recorder)
    if args.audio_in:
        from bridge.errors import check_range
        from bridge.live.inputloop import InputRecorder

        threshold = check_range("input-threshold-db", args.input_threshold_db, -120.0, 0.0)
        parts.input_recorder = InputRecorder(threshold_db=threshold)
    return parts


def _attach_capture(args: argparse.Namespace, session: "object") -> None:
    """With --audio-in: /riff/input/capture and the MIDI capture action write to --seeds-dir."""
    parts = session.parts  # type: ignore[attr-defined]
    if parts.input_recorder is None:
        return
    from bridge.live.inputcapture import InputCapture, SeedFolder

    def boundary() -> "int | None":
        live = session.live  # type: ignore[attr-defined]
        return live.worker.loop_start() if live is not None and live.worker is not None else None

    actions = parts.surfaces.actions
    parts.surfaces.actions.capture = InputCapture(
        parts.input_recorder, parts.store, SeedFolder(args.seeds_dir), boundary,
        select=lambda path: actions.set("seed_image", path),
        threshold_db=parts.input_recorder.threshold_db).capture


def _start_link(args: argparse.Namespace, session: "object") -> "object":
    """With ``--link``: join the Link session, feeding the live engine's core (or None)."""
    if not getattr(args, "link", False):
        return None
    from bridge.live.link import LinkOptions
    from bridge.live.linkbinding import LinkBinding

    options = LinkOptions(beats_per_bar=args.link_quantum, start_stop_sync=args.link_start_stop,
                          commit_tempo=args.timebase_master)
    parts = session.parts  # type: ignore[attr-defined]
    binding = LinkBinding(parts.store, parts.output, session.live.core, options,  # type: ignore[attr-defined]
                          extra_latency_ms=args.link_latency_ms)
    session.status_extras.append(binding.status)  # type: ignore[attr-defined]
    return binding.start()


def _surfaces(args: argparse.Namespace, session: "object") -> "object":
    """OSC, MIDI and presets around the session's store, answering status from the session."""
    from bridge.control.surfaces import ControlSurfaces

    return ControlSurfaces.from_args(args, session.parts.store, status=session.status)  # type: ignore[attr-defined]


def _web(args: argparse.Namespace, session: "object") -> "object":
    """Start the live view (None with --no-web or without aiohttp); played clips go to its page."""
    try:
        from bridge.web.view import WebView
    except ImportError as err:
        print(f"  web view: off ({err}; install riff-bridge[web])", flush=True)
        return None
    view = WebView.from_args(args, session.parts.surfaces, status=session.status)  # type: ignore[attr-defined]
    if view is None or view.start() is None:
        return None
    session.clip_listeners.append(view.hub.add_clip)  # type: ignore[attr-defined]
    print(f"  web: {view.url} (live view; OSCQuery at {view.url.split('?')[0]}?HOST_INFO)", flush=True)
    return view


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


def _announce(session: "object") -> None:
    """Print where the bridge listens: JACK ports, OSC address, MIDI port."""
    parts = session.parts  # type: ignore[attr-defined]
    output, surfaces = parts.output, parts.surfaces
    print(f"riff-bridge serving: JACK client {output.name!r} ({output.sample_rate} Hz, {output.block_size} frames): "
          f"{output.name}:out_L, {output.name}:out_R, {output.name}:midi_in", flush=True)
    if surfaces.osc is not None:
        host, port = surfaces.osc.address
        print(f"  OSC: udp://{host}:{port} (try /riff/ping)", flush=True)
    midi = surfaces.midi_input
    print(f"  MIDI: {midi.describe() if midi is not None and hasattr(midi, 'describe') else ('on' if midi else 'off')}"
          f"; also {output.name}:midi_in", flush=True)
    if parts.recorder is not None:
        print(f"  recording played clips into {parts.recorder.folder}/", flush=True)


def _serve(session: "object", stop: "object", every: float, link: "object" = None) -> None:
    """Tick the session and show the status line until ``stop`` is set."""
    import time

    from bridge.statusline import StatusLine, status_text

    line = StatusLine()
    period = 1.0 if line.tty else every
    next_status = time.monotonic() + period
    try:
        while not stop.wait(0.05):  # type: ignore[attr-defined]
            metrics = session.tick()  # type: ignore[attr-defined]
            if link is not None:
                link.tick()  # type: ignore[attr-defined]
            if period > 0 and time.monotonic() >= next_status:
                next_status = time.monotonic() + period
                text = status_text(metrics, session.parts.store.snapshot())  # type: ignore[attr-defined]
                line.show(text + (f" | {link.describe()}" if link is not None else ""))  # type: ignore[attr-defined]
    finally:
        line.close()
