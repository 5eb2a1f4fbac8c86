"""``riff-bridge control``: run only the control surfaces (OSC server, MIDI input, presets).

For trying a controller, a live-coding setup or a TouchOSC layout without the model or JACK
audio: every change is logged, ``/riff/get/status`` answers with the bpm parameter and zeros,
and ``--tick`` plays a bar/beat clock so that quantized changes and ``/riff/listen/bar`` work.
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "control"
HELP = "Run only the OSC/MIDI control server (no model, no audio) and log every change."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the shared control options plus --tick and --list-midi."""
    from bridge.control.surfaces import add_arguments as add_control_arguments

    add_control_arguments(parser)
    from bridge.web.view import add_arguments as add_web_arguments

    add_web_arguments(parser)
    parser.add_argument("--tick", action="store_true",
                        help="tick bars and beats at the bpm parameter (4/4) as a live engine would")
    parser.add_argument("--list-midi", action="store_true", help="list MIDI input ports and exit")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; returns 0."""
    import logging
    import signal

    from bridge.control.midi_port import input_names
    from bridge.control.surfaces import ControlSurfaces
    from bridge.state import StateStore

    if args.list_midi:
        print("\n".join(input_names(args.midi_api)) or "(no MIDI ports)")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops as Ctrl-C does: files closed, output flushed
    log = logging.getLogger("riff-bridge.control")
    store = StateStore()
    store.subscribe(lambda name, value, state: log.info("%s = %r", name, value))
    with ControlSurfaces.from_args(args, store) as surfaces:
        _report(surfaces)
        web = _web(args, surfaces)
        try:
            _serve(surfaces, store, args.tick, web)
        finally:
            if web is not None:
                web.stop()
    return 0


def _web(args: Any, surfaces: Any) -> Any:
    """The browser live view and OSCQuery server (None with --no-web); prints its address."""
    from bridge.web.view import WebView

    view = WebView.from_args(args, surfaces)
    if view is None or view.start() is None:
        return None
    view.announce()
    print(f"WEB  {view.url}  (live view; OSCQuery: {view.url.split('?')[0]}?HOST_INFO)", flush=True)
    return view


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _report(surfaces: Any) -> None:
    if surfaces.osc is not None:
        host, port = surfaces.osc.address
        print(f"OSC  udp://{host}:{port}  (try: oscsend localhost {port} /riff/ping)")
    if surfaces.midi_input is not None:
        print(f"MIDI {surfaces.midi_input.port_label} ({surfaces.midi_input.api} API)")
    print("Ctrl-C to stop.", flush=True)  # before the web view's line


def _serve(surfaces: Any, store: Any, tick: bool, web: Any = None) -> None:
    """Sleep (or tick 4/4 at the bpm parameter) until KeyboardInterrupt or SIGTERM."""
    import time

    beat = 0
    while True:
        time.sleep(60.0 / store.snapshot().bpm if tick else 3600.0)
        if tick:
            bar, in_bar = divmod(beat, 4)
            if in_bar == 0:
                surfaces.notify_bar(bar)
            surfaces.notify_beat(bar, in_bar)
            if web is not None:
                web.hub.notify_beat(bar, in_bar)
            beat += 1
