"""Every control surface around one StateStore: OSC server, MIDI input, presets, learn.

This is what ``riff-bridge serve`` (and ``riff-bridge control``) construct::

    surfaces = ControlSurfaces(store, status=engine.status, presets=PresetStore(args.presets_dir),
                               osc_host=args.osc_host, osc_port=args.osc_port,
                               midi=args.midi, midi_api=args.midi_api, midi_clock=engine.on_midi_clock)
    surfaces.start()             # binds OSC, opens the MIDI input, loads --preset/--controller
    ...                          # from the engine's (non-realtime) thread:
    surfaces.notify_bar(bar)     # releases quantized changes, sends /riff/bar
    surfaces.notify_beat(bar, beat)
    surfaces.feed_midi(data)     # raw bytes read from a JACK MIDI port, if the engine owns one
    surfaces.stop()

:func:`add_arguments` registers the shared command-line options and
:meth:`ControlSurfaces.from_args` builds the object from them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Iterable

import mido

from bridge.control.actions import Actions
from bridge.control.learn import MidiLearn
from bridge.control.midi_mapper import MessageHook, MidiMapper
from bridge.control.midi_port import APIS, MidiInput, MidiPortError
from bridge.control.osc_router import StatusProvider
from bridge.control.osc_server import DEFAULT_HOST, DEFAULT_PORT, OscServer
from bridge.control.presets import PresetStore, default_user_dir
from bridge.errors import BridgeError
from bridge.state import StateStore

log = logging.getLogger(__name__)

DEFAULT_CONTROLLER = "generic-8knob"
#: ``midi`` values: VIRTUAL opens a virtual input port, NO_MIDI none, anything else a port name.
VIRTUAL = "virtual"
NO_MIDI = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The control-surface options shared by ``serve`` and ``control``."""
    group = parser.add_argument_group("control surfaces (OSC, MIDI, presets)")
    group.add_argument("--osc-host", default=DEFAULT_HOST, help=f"OSC listen address (default {DEFAULT_HOST})")
    group.add_argument("--osc-port", type=int, default=DEFAULT_PORT, help=f"OSC UDP port (default {DEFAULT_PORT})")
    group.add_argument("--no-osc", action="store_true", help="do not start the OSC server")
    group.add_argument("--midi", metavar="NAME", default=VIRTUAL,
                       help="MIDI input: an existing port name, 'virtual' (default: a virtual input "
                            "port riff-bridge-midi:midi_in) or 'none'")
    group.add_argument("--midi-api", choices=sorted(APIS), default=None,
                       help="rtmidi API (default: jack on Linux, the platform API elsewhere)")
    group.add_argument("--presets-dir", type=Path, default=None,
                       help=f"user presets folder (default {default_user_dir()})")
    group.add_argument("--preset", default=None, help="preset to load at start")
    group.add_argument("--controller", default=DEFAULT_CONTROLLER,
                       help=f"preset whose [controller] map to use (default {DEFAULT_CONTROLLER})")


class ControlSurfaces:
    """Owns Actions, the Quantizer, MidiLearn, MidiMapper, the OscServer and the MIDI input."""

    def __init__(self, store: StateStore, *, status: StatusProvider | None = None,
                 presets: PresetStore | None = None, osc_host: str = DEFAULT_HOST,
                 osc_port: int | None = DEFAULT_PORT, midi: str | None = NO_MIDI,
                 midi_api: str | None = None, midi_clock: MessageHook | None = None,
                 preset: str | None = None, controller: str | None = None) -> None:
        self.store = store
        self.actions = Actions(store, presets)
        self.learn = MidiLearn(self.actions)
        self.mapper = MidiMapper(self.actions, self.learn, clock=midi_clock)
        self.osc = (OscServer(self.actions, status, self.learn, osc_host, osc_port)
                    if osc_port is not None else None)
        self.midi_input = (MidiInput(self.mapper, None if midi == VIRTUAL else midi, midi_api)
                           if midi is not None else None)
        self.initial_preset = preset
        self.controller = controller

    @classmethod
    def from_args(cls, args: argparse.Namespace, store: StateStore,
                  status: StatusProvider | None = None,
                  midi_clock: MessageHook | None = None) -> "ControlSurfaces":
        """Build from the options of :func:`add_arguments`."""
        midi = None if args.midi in (None, "none") else args.midi
        return cls(store, status=status, presets=PresetStore(args.presets_dir),
                   osc_host=args.osc_host, osc_port=None if args.no_osc else args.osc_port,
                   midi=midi, midi_api=args.midi_api, midi_clock=midi_clock,
                   preset=args.preset, controller=args.controller)

    def start(self) -> "ControlSurfaces":
        """Load the controller map and preset, start OSC, open MIDI (a virtual port that fails only warns)."""
        if self.controller:
            self._load_controller(self.controller)
        if self.initial_preset:
            self.actions.load_preset(self.initial_preset)
        if self.osc is not None:
            self.osc.start()
        if self.midi_input is not None:
            self._open_midi()
        return self

    def _load_controller(self, name: str) -> None:
        """Use preset ``name``'s map; a missing default map (no factory folder) only warns."""
        try:
            self.actions.load_controller(name)
        except BridgeError as err:
            if name != DEFAULT_CONTROLLER:
                raise
            log.warning("controller map %s unavailable (%s); MIDI has only learned mappings", name, err)

    def _open_midi(self) -> None:
        assert self.midi_input is not None
        try:
            self.midi_input.open()
        except MidiPortError as err:
            if self.midi_input.name is not None:
                raise
            log.warning("%s; continuing without MIDI input", err)
            self.midi_input = None

    def stop(self) -> None:
        """Close MIDI and stop OSC (idempotent)."""
        if self.midi_input is not None:
            self.midi_input.close()
        if self.osc is not None:
            self.osc.stop()

    def __enter__(self) -> "ControlSurfaces":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def notify_bar(self, bar: int) -> None:
        """From the live engine at each bar line: apply quantized changes, tick /riff/bar listeners."""
        if self.osc is not None:
            self.osc.notify_bar(bar)
        else:
            self.actions.quantizer.notify_bar(bar)

    def notify_beat(self, bar: int, beat: int) -> None:
        """From the live engine at each beat: apply beat-quantized changes, tick /riff/beat listeners."""
        if self.osc is not None:
            self.osc.notify_beat(bar, beat)
        else:
            self.actions.quantizer.notify_beat(bar, beat)

    def report_error(self, address: str, text: str) -> None:
        """A failure with no single sender (e.g. a generation fault): ``/riff/error`` to recent
        OSC peers, and a log line."""
        log.warning("%s: %s", address, text)
        if self.osc is not None:
            self.osc.router.broadcast_error(address, text)

    def broadcast(self, address: str, args: list) -> None:
        """News with no one sender (e.g. a skipped silent input loop) to recent OSC peers."""
        if self.osc is not None:
            self.osc.router.broadcast(address, args)

    def detach_clock(self) -> None:
        """The live engine stopped: held changes apply now, later ones immediately."""
        self.actions.quantizer.detach_clock()

    def feed_midi(self, data: bytes | Iterable[int]) -> None:
        """One raw MIDI message (e.g. from the live engine's JACK midi_in port)."""
        self.mapper.handle_bytes(data)

    def feed_message(self, message: mido.Message) -> None:
        """One mido message from any other source."""
        self.mapper.handle(message)
