"""Documentation generated from the code: the OSC namespace, parameters, status and MIDI map format.

docs/CONTROL.md (and the README section pasted from it between ``<!-- control:begin -->`` and
``<!-- control:end -->``) holds blocks delimited by ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; :func:`update_document` refreshes them and the tests fail when
they are stale. Regenerate with ``python -m bridge.control.reference docs/CONTROL.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from bridge.control.midi_map import MAP_FORMAT
from bridge.control.namespace import ERROR_ADDRESS, ROUTES, STATUS_FIELDS, osc_types
from bridge.control.osc_server import DEFAULT_HOST, DEFAULT_PORT
from bridge.control.presets import FACTORY_DIR, PresetStore
from bridge.state import PARAMETERS, ControlState

BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)
CONTROL_BLOCK = re.compile(r"<!-- control:begin -->.*?<!-- control:end -->", re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def osc_table() -> str:
    """Every address the server serves (from namespace.ROUTES), plus the error reply."""
    rows = [(f"`{r.address}`", f"`{r.arguments}`" if r.arguments else "", r.reply, r.doc) for r in ROUTES]
    rows.append(("(any failure)", "", f"`{ERROR_ADDRESS} s:address s:message`",
                 "Wrong type, out of range, unknown address or malformed packet; also logged."))
    return (f"Default: `udp://{DEFAULT_HOST}:{DEFAULT_PORT}`. `<name>` is any parameter below.\n\n"
            + _table(("Address", "Arguments", "Reply", "Meaning"), rows))


def _range(kind: str, low: float | None, high: float | None, choices: tuple[str, ...]) -> str:
    if kind == "choice":
        return ", ".join(choices)
    if kind == "int":
        return f"{int(low)} .. {int(high)}"  # type: ignore[arg-type]
    if kind == "float":
        return f"{low:g} .. {high:g}"
    return "0/1" if kind == "bool" else "text, at most 1000 characters"


def parameter_table() -> str:
    """Every parameter of bridge.state.PARAMETERS with its range, default and OSC types."""
    defaults = ControlState().as_dict()
    rows = []
    for name, spec in PARAMETERS.items():
        accepted, sent = osc_types(spec.kind)
        rows.append((f"`{name}`", spec.kind, _range(spec.kind, spec.low, spec.high, spec.choices),
                     f"`{defaults[name]!r}`", accepted, sent, spec.doc))
    return _table(("Name", "Kind", "Values", "Default", "OSC types accepted", "Reply type", "Meaning"), rows)


def status_table() -> str:
    """The arguments of the ``/riff/get/status`` reply, in order."""
    rows = [(str(i + 1), f"`{key}`", tag, doc) for i, (key, tag, doc) in enumerate(STATUS_FIELDS)]
    return _table(("#", "Key", "Type", "Meaning"), rows)


def midi_format_table() -> str:
    """The controller-map keys (bridge.control.midi_map.MAP_FORMAT)."""
    rows = [(f"`{table}`", f"`{key}`", kind, default, doc) for table, key, kind, default, doc in MAP_FORMAT]
    return _table(("Table", "Key", "Values", "Default", "Meaning"), rows)


def factory_table() -> str:
    """The factory presets in the repository's presets/ folder and what they contain."""
    store = PresetStore(user_dir=FACTORY_DIR / ".none", factory_dir=FACTORY_DIR)
    rows = []
    for name in store.names():
        preset = store.load(name)
        parts = [label for label, present in (("parameters", preset.parameters), ("bank", preset.bank),
                                              ("controller", preset.controller)) if present]
        rows.append((f"`{name}`", ", ".join(parts), preset.description))
    return _table(("Preset", "Tables", "Description"), rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "osc": osc_table,
    "parameters": parameter_table,
    "status": status_table,
    "midi-map": midi_format_table,
    "factory-presets": factory_table,
}


def update_document(text: str) -> str:
    """``text`` with every generated block refreshed; unknown block names raise KeyError."""
    return BLOCK.sub(lambda m: m.group(1) + GENERATORS[m.group("name")]() + m.group(4), text)


def block_names(text: str) -> list[str]:
    """Names of the generated blocks in ``text``."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def control_section(text: str) -> str | None:
    """The ``<!-- control:begin -->`` .. ``<!-- control:end -->`` section, or None."""
    match = CONTROL_BLOCK.search(text)
    return match.group(0) if match else None


def main(argv: list[str] | None = None) -> int:
    """``python -m bridge.control.reference [--check] FILE...``: refresh (or check) generated blocks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        fresh = update_document(text)
        if fresh != text:
            stale += 1
            print(f"{path}: {'stale' if args.check else 'updated'}")
            if not args.check:
                path.write_text(fresh, encoding="utf-8")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
