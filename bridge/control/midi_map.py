"""Controller maps: which MIDI control change, note or program drives what.

A map is plain data read from the ``[controller]`` table of a preset (see :data:`MAP_FORMAT`,
rendered into docs/CONTROL.md). :class:`CcBinding` turns a 7-bit (0..127) or 14-bit
(0..16383) controller value into a parameter value through a range and a curve;
:class:`TriggerBinding` makes a pad (note) or button (CC) trigger a bank slot or a new seed;
``programs`` lists the presets that program changes load. Channels are 1..16 in files (``None``: any channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable

from bridge.control.bank import check_side
from bridge.errors import ParameterError
from bridge.state import PARAMETERS

#: Steepness of the exp/log curves: exp(x) = (e^(Kx) - 1) / (e^K - 1), log is its inverse.
CURVE_K = 4.0
CURVES: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "exp": lambda x: math.expm1(CURVE_K * x) / math.expm1(CURVE_K),
    "log": lambda x: math.log1p(math.expm1(CURVE_K) * x) / CURVE_K,
}
MODES = ("absolute", "toggle")
TRIGGER_ACTIONS = ("slot", "new_seed", "capture")
MAPPABLE_KINDS = ("int", "float", "bool", "choice")

#: The map file format: (table, key, type, default, meaning). The parser accepts exactly these keys.
MAP_FORMAT: tuple[tuple[str, str, str, str, str], ...] = (
    ("[controller]", "name", "string", '""', "Shown in logs and `riff-bridge presets`."),
    ("[controller]", "programs", "array of preset names", "[]",
     "Program change N loads `programs[bank * 128 + N]`; bank is the last CC 0 (bank select MSB) value."),
    ("[controller]", "program_channel", "1..16", "any", "Channel that program changes and bank select are read on."),
    ("[[controller.cc]]", "cc", "0..127", "required", "Controller number (the MSB for 14-bit)."),
    ("[[controller.cc]]", "channel", "1..16", "any", "MIDI channel; leave out to match every channel."),
    ("[[controller.cc]]", "param", "parameter name", "required", "A number, bool or choice parameter (not a text one)."),
    ("[[controller.cc]]", "low", "number", "parameter minimum", "Value at controller 0 (may exceed `high` to invert)."),
    ("[[controller.cc]]", "high", "number", "parameter maximum", "Value at controller 127 (16383 for 14-bit)."),
    ("[[controller.cc]]", "curve", "linear, exp, log", "linear",
     f"Shape over the normalised x: exp = (e^({CURVE_K:g}x) - 1) / (e^{CURVE_K:g} - 1), log its inverse."),
    ("[[controller.cc]]", "bits", "7 or 14", "7", "14: MSB on `cc` (0..31), LSB on `cc + 32`."),
    ("[[controller.cc]]", "mode", "absolute, toggle", "absolute",
     "toggle (bool parameters): each press (value rising through 64) flips the value."),
    ("[[controller.note]]", "note", "0..127", "required", "Note number of a pad or key (note-on with velocity > 0)."),
    ("[[controller.note]]", "channel", "1..16", "any", "MIDI channel; leave out to match every channel."),
    ("[[controller.note]]", "action", "slot, new_seed, capture", "slot",
     "slot: copy bank slot `slot` onto `side`; new_seed: a random seed for `side`; capture: "
     "freeze the last input loop as seed_image (as /riff/input/capture)."),
    ("[[controller.note]]", "slot", "1..128", "1", "Bank slot (1-based) for action = slot."),
    ("[[controller.note]]", "side", "a, b", "a", "Which end of the interpolation to change."),
    ("[[controller.button]]", "cc", "0..127", "required",
     "A button sending CCs: triggers when its value rises through 64 (press)."),
    ("[[controller.button]]", "channel", "1..16", "any", "As for notes."),
    ("[[controller.button]]", "action", "slot, new_seed, capture", "slot", "As for notes."),
    ("[[controller.button]]", "slot", "1..128", "1", "As for notes."),
    ("[[controller.button]]", "side", "a, b", "a", "As for notes."),
)


def format_keys(table: str) -> tuple[str, ...]:
    """The keys :data:`MAP_FORMAT` allows in ``table``."""
    return tuple(row[1] for row in MAP_FORMAT if row[0] == table)


def _check_channel(value: Any, where: str) -> int | None:
    if value is None or value == "any":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        raise ParameterError(f"{where}.channel", "an integer in [1, 16] (or leave it out: any)", value)
    return value


def _check_number(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(where, f"an integer in [{low}, {high}]", value)
    return value


def _check_keys(table: Any, name: str, where: str) -> dict[str, Any]:
    allowed = format_keys(name)
    if not isinstance(table, dict):
        raise ParameterError(where, "a table with keys " + ", ".join(allowed), table)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ParameterError(where, "keys " + ", ".join(allowed), unknown)
    return table


@dataclass(frozen=True)
class CcBinding:
    """Controller ``cc`` on ``channel`` (1..16, None: any) drives ``param`` over [low, high]."""

    param: str
    cc: int
    channel: int | None = None
    low: float | None = None
    high: float | None = None
    curve: str = "linear"
    bits: int = 7
    mode: str = "absolute"

    def __post_init__(self) -> None:
        spec = PARAMETERS.get(self.param)
        if spec is None or spec.kind not in MAPPABLE_KINDS:
            mappable = [n for n, s in PARAMETERS.items() if s.kind in MAPPABLE_KINDS]
            raise ParameterError("param", "one of " + ", ".join(mappable), self.param)
        _check_number(self.cc, "cc", 0, 31 if self.bits == 14 else 127)
        if self.bits not in (7, 14):
            raise ParameterError("bits", "7 or 14", self.bits)
        if self.curve not in CURVES:
            raise ParameterError("curve", "one of " + ", ".join(CURVES), self.curve)
        if self.mode not in MODES or (self.mode == "toggle" and (spec.kind != "bool" or self.bits != 7)):
            raise ParameterError("mode", "absolute, or toggle for a 7-bit bool parameter", self.mode)
        _check_channel(self.channel, "cc")
        for bound in (self.low, self.high):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                raise ParameterError("low/high", "numbers", bound)
            if bound is not None and spec.kind in ("int", "float"):
                spec.coerce(round(bound) if spec.kind == "int" else float(bound))

    @property
    def key(self) -> tuple[int, int | None]:
        """(cc, channel): two bindings with the same key are the same control."""
        return (self.cc, self.channel)

    @property
    def full_scale(self) -> int:
        """The largest raw value: 127 or 16383."""
        return 127 if self.bits == 7 else 16383

    def matches(self, channel: int) -> bool:
        """True when a message on ``channel`` (1..16) is for this binding."""
        return self.channel is None or self.channel == channel

    def value(self, raw: int) -> Any:
        """The parameter value for controller value ``raw`` (clamped to 0..full scale)."""
        x = min(max(raw, 0), self.full_scale) / self.full_scale
        y = min(max(CURVES[self.curve](x), 0.0), 1.0)
        spec = PARAMETERS[self.param]
        if spec.kind == "bool":
            return y >= 0.5
        if spec.kind == "choice":
            return spec.choices[min(int(y * len(spec.choices)), len(spec.choices) - 1)]
        low = spec.low if self.low is None else self.low
        high = spec.high if self.high is None else self.high
        number = low + (high - low) * y  # type: ignore[operator]
        return round(number) if spec.kind == "int" else float(number)

    def to_toml(self) -> dict[str, Any]:
        """The ``[[controller.cc]]`` table (defaults left out)."""
        return _non_default(self, CcBinding(param=self.param, cc=self.cc))

    @classmethod
    def from_toml(cls, table: Any, where: str) -> "CcBinding":
        """Read one ``[[controller.cc]]`` table."""
        table = dict(_check_keys(table, "[[controller.cc]]", where))
        if "param" not in table or "cc" not in table:
            raise ParameterError(where, "a table with at least param and cc", sorted(table))
        table["channel"] = _check_channel(table.get("channel"), where)
        return _build(cls, table, where)


@dataclass(frozen=True)
class TriggerBinding:
    """A pad (note-on) or button (CC rising through 64) that triggers a bank slot or a new seed.

    ``source`` is ``note`` (``[[controller.note]]``, key ``note``) or ``cc``
    (``[[controller.button]]``, key ``cc``); ``number`` is the note or controller number.
    """

    source: str
    number: int
    channel: int | None = None
    action: str = "slot"
    slot: int = 1
    side: str = "a"

    def __post_init__(self) -> None:
        if self.source not in ("note", "cc"):
            raise ParameterError("source", "note or cc", self.source)
        _check_number(self.number, self.source, 0, 127)
        _check_channel(self.channel, self.source)
        if self.action not in TRIGGER_ACTIONS:
            raise ParameterError("action", "one of " + ", ".join(TRIGGER_ACTIONS), self.action)
        _check_number(self.slot, "slot", 1, 128)
        check_side(self.side)

    @property
    def key(self) -> tuple[str, int, int | None]:
        """(source, number, channel): two triggers with the same key are the same control."""
        return (self.source, self.number, self.channel)

    def matches(self, channel: int) -> bool:
        """True when a message on ``channel`` (1..16) is for this binding."""
        return self.channel is None or self.channel == channel

    def to_toml(self) -> dict[str, Any]:
        """The ``[[controller.note]]`` or ``[[controller.button]]`` table (defaults left out)."""
        table: dict[str, Any] = {"note" if self.source == "note" else "cc": self.number}
        defaults = TriggerBinding(self.source, self.number)
        for name in ("channel", "action", "slot", "side"):
            if getattr(self, name) != getattr(defaults, name):
                table[name] = getattr(self, name)
        return table

    @classmethod
    def from_toml(cls, table: Any, source: str, where: str) -> "TriggerBinding":
        """Read one ``[[controller.note]]`` (source note) or ``[[controller.button]]`` (source cc)."""
        name = "[[controller.note]]" if source == "note" else "[[controller.button]]"
        table = dict(_check_keys(table, name, where))
        if source not in table:
            raise ParameterError(where, f"a table with at least {source}", sorted(table))
        table["number"] = table.pop(source)
        table["channel"] = _check_channel(table.get("channel"), where)
        return _build(cls, {"source": source, **table}, where)


def _build(cls: Any, table: dict[str, Any], where: str) -> Any:
    try:
        return cls(**table)
    except ParameterError as err:
        raise ParameterError(f"{where}.{err.name}", err.allowed, err.given) from None
    except TypeError as err:
        raise ParameterError(where, "values of the documented types", str(err)) from None


def _non_default(binding: Any, default: Any) -> dict[str, Any]:
    out = {}
    for name in binding.__dataclass_fields__:
        value = getattr(binding, name)
        if value is not None and (value != getattr(default, name) or name in ("param", "cc", "note")):
            out[name] = value
    return out


@dataclass(frozen=True)
class ControllerMap:
    """All bindings of one controller; immutable, so the MIDI thread reads it without locks."""

    name: str = ""
    cc: tuple[CcBinding, ...] = ()
    triggers: tuple[TriggerBinding, ...] = ()
    programs: tuple[str, ...] = ()
    program_channel: int | None = None

    def __post_init__(self) -> None:
        for preset in self.programs:
            if not isinstance(preset, str):
                raise ParameterError("programs", "an array of preset names", self.programs)
        _check_channel(self.program_channel, "controller")

    @cached_property
    def _by_cc(self) -> dict[int, tuple[tuple[CcBinding, str], ...]]:
        """Controller number -> (binding, part) with part 'value', 'msb' or 'lsb'."""
        table: dict[int, list[tuple[CcBinding, str]]] = {}
        for binding in self.cc:
            if binding.bits == 7:
                table.setdefault(binding.cc, []).append((binding, "value"))
            else:
                table.setdefault(binding.cc, []).append((binding, "msb"))
                table.setdefault(binding.cc + 32, []).append((binding, "lsb"))
        return {cc: tuple(entries) for cc, entries in table.items()}

    def cc_bindings(self, channel: int, cc: int) -> tuple[tuple[CcBinding, str], ...]:
        """Bindings (with the part of a 14-bit pair) that controller ``cc`` on ``channel`` drives."""
        return tuple(e for e in self._by_cc.get(cc, ()) if e[0].matches(channel))

    def trigger_bindings(self, source: str, channel: int, number: int) -> tuple[TriggerBinding, ...]:
        """Triggers for a note-on (``source`` note) or a button CC (``source`` cc)."""
        return tuple(t for t in self.triggers
                     if t.source == source and t.number == number and t.matches(channel))

    def with_cc(self, binding: CcBinding) -> tuple["ControllerMap", tuple[CcBinding, ...]]:
        """A copy with ``binding`` added; returns it and the bindings it replaced (same cc and channel)."""
        replaced = tuple(b for b in self.cc if b.key == binding.key)
        kept = tuple(b for b in self.cc if b.key != binding.key)
        return replace(self, cc=kept + (binding,)), replaced

    def overlay(self, other: "ControllerMap") -> "ControllerMap":
        """This map with ``other``'s bindings on top (same key: ``other`` wins)."""
        cc_keys = {b.key for b in other.cc}
        trigger_keys = {t.key for t in other.triggers}
        return replace(
            self,
            cc=tuple(b for b in self.cc if b.key not in cc_keys) + other.cc,
            triggers=tuple(t for t in self.triggers if t.key not in trigger_keys) + other.triggers,
            programs=other.programs or self.programs,
        )

    def to_toml(self) -> dict[str, Any]:
        """The ``[controller]`` table."""
        table: dict[str, Any] = {"name": self.name}
        if self.programs:
            table["programs"] = list(self.programs)
        if self.program_channel is not None:
            table["program_channel"] = self.program_channel
        table["cc"] = [b.to_toml() for b in self.cc]
        table["note"] = [t.to_toml() for t in self.triggers if t.source == "note"]
        table["button"] = [t.to_toml() for t in self.triggers if t.source == "cc"]
        return {key: value for key, value in table.items() if value != []}

    @classmethod
    def from_toml(cls, table: Any) -> "ControllerMap":
        """Read a ``[controller]`` table with its ``cc``, ``note`` and ``button`` arrays of tables."""
        if not isinstance(table, dict):
            raise ParameterError("controller", "a table", table)
        head = {k: v for k, v in table.items() if k not in ("cc", "note", "button")}
        _check_keys(head, "[controller]", "controller")
        return cls(
            name=str(head.get("name", "")),
            cc=tuple(CcBinding.from_toml(t, f"controller.cc[{i + 1}]")
                     for i, t in enumerate(_array(table.get("cc", []), "controller.cc"))),
            triggers=_triggers(table, "note") + _triggers(table, "button"),
            programs=tuple(_array(head.get("programs", []), "controller.programs")),
            program_channel=_check_channel(head.get("program_channel"), "controller"),
        )


def _triggers(table: dict[str, Any], key: str) -> tuple[TriggerBinding, ...]:
    source = "note" if key == "note" else "cc"
    items = _array(table.get(key, []), f"controller.{key}")
    return tuple(TriggerBinding.from_toml(t, source, f"controller.{key}[{i + 1}]")
                 for i, t in enumerate(items))


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParameterError(where, "an array", value)
    return value


EMPTY_MAP = ControllerMap()
