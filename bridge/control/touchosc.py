"""A TouchOSC (mk2) layout generated from the parameter table: ``examples/riff-bridge.tosc``.

A ``.tosc`` file is a zlib-compressed XML document (``<lexml version='3'>``) of nodes
(GROUP, FADER, BUTTON, LABEL) with properties, values and OSC messages. Each number
parameter becomes a fader whose ``x`` (0..1) is scaled to the parameter's range and sent
to ``/riff/set/<name>``; it also receives ``/riff/get/<name>`` so it follows changes made
elsewhere (after the "sync" button subscribed it). ``mute`` is a toggle; pads put bank slots
1-8 on side A or B; two buttons ask for new seeds.

Run ``python -m bridge.control.touchosc [FILE]`` to regenerate the file.
"""

from __future__ import annotations

import sys
import uuid
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

from bridge.state import PARAMETERS, ControlState, ParameterSpec

OUTPUT = Path(__file__).resolve().parents[2] / "examples" / "riff-bridge.tosc"
WIDTH, HEIGHT = 1024, 768
FADERS = ("alpha", "denoising", "guidance", "steps", "bars", "bpm", "volume")
ORANGE = (0.96, 0.65, 0.14)
#: Set the TouchOSC connection's receive port to this.
REPLY_PORT = 9001


def _cdata(text: str) -> str:
    return f"<![CDATA[{text}]]>"


def _property(kind: str, key: str, value: str) -> str:
    return f"<property type='{kind}'><key>{_cdata(key)}</key><value>{value}</value></property>"


def _frame(x: int, y: int, w: int, h: int) -> str:
    return _property("r", "frame", f"<x>{x}</x><y>{y}</y><w>{w}</w><h>{h}</h>")


def _color(rgb: tuple[float, float, float]) -> str:
    r, g, b = rgb
    return _property("c", "color", f"<r>{r}</r><g>{g}</g><b>{b}</b><a>1</a>")


def _value(key: str, default: str) -> str:
    return (f"<value><key>{_cdata(key)}</key><locked>0</locked><lockedDefaultCurrent>0</lockedDefaultCurrent>"
            f"<default>{_cdata(default)}</default><defaultPull>0</defaultPull></value>")


def _partial(kind: str, conversion: str, value: str, low: float = 0, high: float = 1) -> str:
    return (f"<partial><type>{kind}</type><conversion>{conversion}</conversion><value>{_cdata(escape(value))}</value>"
            f"<scaleMin>{low:g}</scaleMin><scaleMax>{high:g}</scaleMax></partial>")


def _osc(path: str, arguments: str, send: bool, receive: bool, condition: str = "ANY") -> str:
    return (f"<osc><enabled>1</enabled><send>{int(send)}</send><receive>{int(receive)}</receive>"
            "<feedback>0</feedback><noDuplicates>0</noDuplicates><connections>1111111111</connections>"
            f"<triggers><trigger><var>{_cdata('x')}</var><condition>{condition}</condition></trigger></triggers>"
            f"<path>{_partial('CONSTANT', 'STRING', path)}</path><arguments>{arguments}</arguments></osc>")


def _node(kind: str, name: str, frame: str, extra: str = "", values: str = "", messages: str = "",
          children: str = "") -> str:
    props = _property("s", "name", _cdata(name)) + frame + _color(ORANGE) + extra
    body = f"<properties>{props}</properties><values>{values}</values><messages>{messages}</messages>"
    if children:
        body += f"<children>{children}</children>"
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"riff-bridge/{name}")
    return f"<node ID='{ident}' type='{kind}'>{body}</node>"


def _label(name: str, text: str, x: int, y: int, w: int, h: int = 30) -> str:
    return _node("LABEL", name, _frame(x, y, w, h), _property("i", "textSize", "14"),
                 _value("text", text) + _value("touch", "false"))


def _fader(spec: ParameterSpec, x: int, y: int) -> str:
    """A vertical fader: sends /riff/set/NAME scaled to the range, follows /riff/get/NAME."""
    low, high = float(spec.low), float(spec.high)  # type: ignore[arg-type]
    conversion = "INTEGER" if spec.kind == "int" else "FLOAT"
    argument = _partial("VALUE", conversion, "x", low, high)
    messages = (_osc(f"/riff/set/{spec.name}", argument, True, False)
                + _osc(f"/riff/get/{spec.name}", argument, False, True))
    default = (getattr(ControlState(), spec.name) - low) / (high - low)
    fader = _node("FADER", spec.name, _frame(x, y + 30, 100, 380), _property("i", "orientation", "0"),
                  _value("x", f"{default:.6g}") + _value("touch", "false"), messages)
    return _label(f"{spec.name}_label", spec.name, x, y, 100) + fader


def _button(name: str, path: str, arguments: str, x: int, y: int, w: int = 100, h: int = 60,
            toggle: bool = False, receive: str | None = None) -> str:
    messages = _osc(path, arguments, True, False, "ANY" if toggle else "RISE")
    if receive:
        messages += _osc(receive, _partial("VALUE", "INTEGER", "x"), False, True)
    return (_node("BUTTON", name, _frame(x, y, w, h), _property("i", "buttonType", "1" if toggle else "0"),
                  _value("x", "0") + _value("touch", "false"), messages)
            + _label(f"{name}_text", name.replace("_", " "), x, y + h, w, 24))


def _sync_button(x: int, y: int) -> str:
    """One press: replies to REPLY_PORT (the connection's receive port), subscribe every fader
    and the toggle, then read every value."""
    names = [*FADERS, "mute", "seed_a", "seed_b"]
    messages = _osc("/riff/reply_port", _partial("CONSTANT", "INTEGER", str(REPLY_PORT)), True, False, "RISE")
    messages += "".join(_osc(f"/riff/listen/{n}", "", True, False, "RISE") for n in names)
    messages += _osc("/riff/get/all", "", True, False, "RISE")
    return (_node("BUTTON", "sync", _frame(x, y, 100, 60), _property("i", "buttonType", "0"),
                  _value("x", "0") + _value("touch", "false"), messages)
            + _label("sync_text", "sync (press first)", x, y + 60, 140, 24))


def _pads(x: int, y: int) -> str:
    pads = []
    for side_index, side in enumerate("ab"):
        for slot in range(1, 9):
            args = _partial("CONSTANT", "INTEGER", str(slot)) + _partial("CONSTANT", "STRING", side)
            pads.append(_button(f"pad_{side}{slot}", "/riff/bank/trigger", args,
                                x + (slot - 1) * 110, y + side_index * 100, 100, 60))
    return "".join(pads)


def layout_xml() -> str:
    """The whole layout document (uncompressed), the same bytes every run."""
    children = [_label("title", "riff-bridge", 20, 10, 300, 36)]
    for column, name in enumerate(FADERS):
        children.append(_fader(PARAMETERS[name], 20 + column * 115, 60))
    children.append(_button("mute", "/riff/set/mute", _partial("VALUE", "INTEGER", "x"), 840, 90,
                            toggle=True, receive="/riff/get/mute"))
    for row, side in enumerate("ab"):
        children.append(_button(f"new_seed_{side}", "/riff/seed/new", _partial("CONSTANT", "STRING", side),
                                840, 200 + row * 100))
    children.append(_sync_button(840, 400))
    children.append(_pads(20, 520))
    root = _node("GROUP", "riff-bridge", _frame(0, 0, WIDTH, HEIGHT), "", "", "", "".join(children))
    return f"<?xml version='1.0' encoding='UTF-8'?><lexml version='3'>{root}</lexml>"


def write(path: Path = OUTPUT) -> Path:
    """Write the zlib-compressed layout to ``path``."""
    path.write_bytes(zlib.compress(layout_xml().encode("utf-8"), 9))
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
