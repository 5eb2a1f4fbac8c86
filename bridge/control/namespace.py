"""The OSC namespace: every address the server answers, as data.

:data:`ROUTES` drives both dispatch (:func:`resolve`) and the documentation tables
(:mod:`bridge.control.reference`), so the README cannot list an address the code does not
serve or miss one it does. ``<name>`` stands for any key of :data:`bridge.state.PARAMETERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import BridgeError
from bridge.state import PARAMETERS

PREFIX = "/riff"
ERROR_ADDRESS = "/riff/error"


@dataclass(frozen=True)
class Route:
    """One address (or ``<name>`` pattern), its arguments, its reply and its handler name."""

    address: str
    arguments: str
    reply: str
    doc: str
    handler: str

    @property
    def is_pattern(self) -> bool:
        """True for ``/riff/<verb>/<name>`` routes that take a parameter name."""
        return self.address.endswith("/<name>")

    @property
    def prefix(self) -> str:
        """For a pattern, the address up to and including the last slash."""
        return self.address[: -len("<name>")]


#: The status fields of ``/riff/get/status``: (key in the status dict, OSC type, meaning).
STATUS_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("tempo", "f", "Tempo in quarter notes per minute (transport, MIDI clock, Link or the bpm parameter)."),
    ("bar", "i", "Current bar number (0 before playback)."),
    ("clips_generated", "i", "Clips generated since start."),
    ("last_generation_s", "f", "Seconds the last clip took to generate."),
    ("late_clips", "i", "Clips that were not ready at their bar line."),
    ("xruns", "i", "JACK xruns since start."),
    ("beats_per_bar", "i", "Meter: beats per bar (7 in 7/8)."),
    ("beat_unit", "i", "Meter: the note value of a beat (8 in 7/8)."),
    ("tempo_source", "s", "Where the tempo comes from: transport, midi, link or control."),
    ("input_level_db", "f", "Level on in_L/in_R: RMS over about 0.3 s in dBFS (-120: silence or no --audio-in)."),
    ("input_state", "s", "Input source: off (source is prompt), waiting (no complete input loop yet), "
                         "silent (last loop below the threshold: not restyled) or ready."),
    ("input_latency_loops", "i", "Loops from the end of an input loop to the start of its restyled clip "
                                 "(1; 2 when generation is slower than a loop; -1 before the first)."),
    ("input_detail", "s", "Why, in words (e.g. the silent loop's level and the threshold)."),
    ("link_peers", "i", "Other Ableton Link peers in the session (0 without --link)."),
)

#: Other names a status provider may use (those of bridge.live.metrics.LiveMetrics.as_dict()).
STATUS_ALIASES = {"tempo": "quarter_bpm", "bar": "current_bar", "last_generation_s": "generation_seconds_last"}

_STATUS_REPLY = "`/riff/get/status " + " ".join(f"{tag}:{key}" for key, tag, _ in STATUS_FIELDS) + "`"

ROUTES: tuple[Route, ...] = (
    Route("/riff/set/<name>", "value", "none (listeners get the change)",
          "Set a parameter. Held until the next beat or bar when `quantize` is beat or bar "
          "and the live engine is ticking; immediate otherwise.", "set"),
    Route("/riff/get/<name>", "", "`/riff/get/<name> value`", "Read a parameter.", "get"),
    Route("/riff/listen/<name>", "", "`/riff/get/<name> value`, now and after every change",
          "Subscribe the reply address to a parameter.", "listen"),
    Route("/riff/unlisten/<name>", "", "none", "Unsubscribe from a parameter.", "unlisten"),
    Route("/riff/get/all", "", "`/riff/get/<name> value` for every parameter",
          "Read every parameter (one message each).", "get_all"),
    Route("/riff/get/status", "", _STATUS_REPLY, "Read the live engine's status.", "status"),
    Route("/riff/ping", "", "`/riff/pong s:version`", "Check the server is alive.", "ping"),
    Route("/riff/listen/bar", "", "`/riff/bar i:bar` at every bar line", "Subscribe to bar ticks.",
          "listen_bar"),
    Route("/riff/unlisten/bar", "", "none", "Unsubscribe from bar ticks.", "unlisten_bar"),
    Route("/riff/listen/beat", "", "`/riff/beat i:bar i:beat` at every beat", "Subscribe to beat ticks.",
          "listen_beat"),
    Route("/riff/unlisten/beat", "", "none", "Unsubscribe from beat ticks.", "unlisten_beat"),
    Route("/riff/reply_port", "i:port [s:scope]", "none",
          "Send replies for this sender (its address and port) to PORT on its host (0: back to the "
          "sending port). For senders that cannot receive on their sending port (Sonic Pi, "
          "TidalCycles, Pd); other tools on the same host keep their replies. Scope `host`: for "
          "every sender of the host without a port of its own (one-shot senders such as oscsend).",
          "reply_port"),
    Route("/riff/preset/load", "s:name", "`/riff/preset/loaded s:name`",
          "Apply a preset (user folder first, then factory); quantized like a set.", "preset_load"),
    Route("/riff/preset/save", "s:name [i:overwrite]", "`/riff/preset/saved s:name`",
          "Save all parameters and the bank as a user preset. An existing preset is an error "
          "unless overwrite is 1 (the old file is then kept as NAME.toml.bak).", "preset_save"),
    Route("/riff/preset/list", "", "`/riff/preset/list s:name ...`", "List loadable presets.",
          "preset_list"),
    Route("/riff/bank/trigger", "i:slot [s:side]", "none (listeners get the changes)",
          "Put bank slot SLOT (1-based) on side a (default) or b.", "bank_trigger"),
    Route("/riff/seed/new", "[s:side]", "none (listeners get the new seed)",
          "A random seed on side a (default) or b.", "seed_new"),
    Route("/riff/midi/learn", "s:param", "`/riff/midi/learned s:param i:channel i:cc [s:replaced ...]`",
          "Map the next moved MIDI controller to PARAM and save it in the user's learned map.",
          "midi_learn"),
    Route("/riff/midi/learn/cancel", "", "none", "Forget a pending learn.", "midi_learn_cancel"),
    Route("/riff/input/capture", "[s:name]", "`/riff/input/captured s:file`",
          "Freeze the last completed input loop as a spectrogram PNG in the seeds folder (never "
          "replacing a file; default name input-DATE-TIME) and select it as seed_image. Needs --audio-in.",
          "input_capture"),
)

#: Addresses the server sends (besides ``/riff/get/<name>``); documented in ROUTES' reply column.
REPLIES = ("/riff/pong", "/riff/bar", "/riff/beat", "/riff/error", "/riff/preset/loaded",
           "/riff/preset/saved", "/riff/preset/list", "/riff/midi/learned", "/riff/get/status",
           "/riff/input/captured", "/riff/input/skipped")

#: First argument of ``/riff/error`` for failures that no message caused (sent to recent peers).
GENERATION_ERROR = "/riff/generate"
ERROR_SOURCES = (GENERATION_ERROR,)

#: Names that are addresses of their own under /riff/get or /riff/listen, never parameters.
RESERVED_NAMES = ("all", "status", "bar", "beat")

_EXACT = {route.address: route for route in ROUTES if not route.is_pattern}
_PATTERNS = tuple(route for route in ROUTES if route.is_pattern)


class AddressError(BridgeError):
    """An OSC address that the server does not serve."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"unknown address {address[:200]!r}: expected /riff/set|get|listen|unlisten/"
                         f"<parameter> or one of {', '.join(sorted(_EXACT))}")


def resolve(address: str) -> tuple[Route, str | None]:
    """The route for ``address`` and, for patterns, the parameter name; AddressError otherwise."""
    route = _EXACT.get(address)
    if route is not None:
        return route, None
    for pattern in _PATTERNS:
        name = address[len(pattern.prefix):]
        if address.startswith(pattern.prefix) and name in PARAMETERS:
            return pattern, name
    raise AddressError(address)


def osc_types(kind: str) -> tuple[str, str]:
    """(accepted OSC types, reply type) for a parameter kind."""
    return {
        "str": ("s, S", "s"),
        "int": ("i, h, or a whole f/d", "i (h above 2^31-1)"),
        "float": ("f, d, i, h", "f"),
        "bool": ("i/f 0 or 1, T, F, s true/false/on/off", "i (0 or 1)"),
        "choice": ("s", "s"),
    }[kind]
