"""The bridge's controllable parameters, their immutable snapshot, and the thread-safe store.

Control surfaces (OSC, MIDI, presets) only produce ``(name, value)`` events; :class:`StateStore`
validates them against :data:`PARAMETERS` and publishes a new frozen :class:`ControlState`.
Other threads read whole snapshots, never half-updated state.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable

from bridge.errors import ParameterError

SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class ParameterSpec:
    """What one parameter accepts: ``kind`` is str, int, float, bool or choice."""

    name: str
    kind: str
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """Human text of the allowed values, for error messages and docs."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            word = "an integer" if self.kind == "int" else "a number"
            return f"{word} in [{self.low:g}, {self.high:g}]"
        if self.kind == "bool":
            return "0 or 1 (or true/false)"
        return "a string (at most 1000 characters)"

    def coerce(self, value: Any) -> Any:
        """``value`` converted to this parameter's type, or ParameterError."""
        return _COERCERS[self.kind](self, value)


def _coerce_str(spec: ParameterSpec, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise ParameterError(spec.name, spec.allowed(), value)
    return value


def _coerce_number(spec: ParameterSpec, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(spec.name, spec.allowed(), value)
    if isinstance(value, float) and not math.isfinite(value):  # int(nan) would raise ValueError
        raise ParameterError(spec.name, spec.allowed(), value)
    if spec.kind == "int" and int(value) != value:
        raise ParameterError(spec.name, spec.allowed(), value)
    number = int(value) if spec.kind == "int" else float(value)
    if not (spec.low <= number <= spec.high):  # type: ignore[operator]  # NaN fails too
        raise ParameterError(spec.name, spec.allowed(), value)
    return number


def _coerce_bool(spec: ParameterSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "0", "1"):
        return value.lower() in ("true", "on", "1")
    raise ParameterError(spec.name, spec.allowed(), value)


def _coerce_choice(spec: ParameterSpec, value: Any) -> str:
    if value not in spec.choices:
        raise ParameterError(spec.name, spec.allowed(), value)
    return str(value)


_COERCERS: dict[str, Callable[[ParameterSpec, Any], Any]] = {
    "str": _coerce_str, "int": _coerce_number, "float": _coerce_number,
    "bool": _coerce_bool, "choice": _coerce_choice,
}


@dataclass(frozen=True)
class ControlState:
    """One consistent snapshot of everything a performer controls."""

    prompt_a: str = "funky synth solo"
    prompt_b: str = "funky synth solo"
    seed_a: int = 42
    seed_b: int = 43
    alpha: float = 0.0
    negative: str = ""
    denoising: float = 0.75
    guidance: float = 7.0
    steps: int = 25
    bars: int = 2
    bpm: float = 120.0
    seed_image: str = "grid"
    mask: str = ""
    source: str = "prompt"
    volume: float = 0.8
    mute: bool = False
    quantize: str = "off"

    def with_value(self, name: str, value: Any) -> "ControlState":
        """A copy with ``name`` set to the validated ``value``."""
        spec = PARAMETERS.get(name)
        if spec is None:
            raise ParameterError("name", "one of " + ", ".join(PARAMETERS), name)
        return replace(self, **{name: spec.coerce(value)})

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of all values (for presets, status and replies)."""
        return asdict(self)


PARAMETERS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec("prompt_a", "str", "Text prompt at alpha 0."),
        ParameterSpec("prompt_b", "str", "Text prompt at alpha 1."),
        ParameterSpec("seed_a", "int", "Noise seed at alpha 0.", 0, SEED_MAX),
        ParameterSpec("seed_b", "int", "Noise seed at alpha 1.", 0, SEED_MAX),
        ParameterSpec("alpha", "float", "Interpolation between A (0) and B (1).", 0.0, 1.0),
        ParameterSpec("negative", "str", "Negative prompt (empty: none)."),
        ParameterSpec("denoising", "float", "img2img strength: 0 keeps the seed image, 1 ignores it.", 0.0, 1.0),
        ParameterSpec("guidance", "float", "Classifier-free guidance scale.", 0.0, 30.0),
        ParameterSpec("steps", "int", "Diffusion steps per clip.", 1, 150),
        ParameterSpec("bars", "int", "Loop length in bars.", 1, 16),
        ParameterSpec("bpm", "float", "Tempo when no transport or MIDI clock sets it.", 20.0, 400.0),
        ParameterSpec("seed_image", "str", "Seed image: built-in name ('grid': drum grid at the tempo; 'kick'; 'pulse': a click on each beat; 'silence'; 'accent': the prompt's own sound accented on each beat, drawn by the model first), or file in the seeds folder."),
        ParameterSpec("mask", "str", "Inpainting mask: built-in name or file in the seeds folder (empty: none)."),
        ParameterSpec("source", "choice", "What each clip restyles: prompt (text and seed image) or input "
                      "(img2img of the last input loop on in_L/in_R at denoising; needs --audio-in).",
                      choices=("prompt", "input")),
        ParameterSpec("volume", "float", "Output gain (linear).", 0.0, 2.0),
        ParameterSpec("mute", "bool", "Silence the output (generation continues)."),
        ParameterSpec("quantize", "choice", "When /riff/set changes apply.", choices=("off", "beat", "bar")),
    )
}

assert set(PARAMETERS) == {f.name for f in fields(ControlState)}


Listener = Callable[[str, Any, ControlState], None]


class StateStore:
    """Thread-safe holder of the current :class:`ControlState`.

    ``set`` validates, swaps the snapshot atomically and calls listeners (outside the lock)
    with ``(name, value, new_state)``. Readers call ``snapshot()`` and keep the object.
    """

    def __init__(self, initial: ControlState | None = None) -> None:
        self._state = initial or ControlState()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def snapshot(self) -> ControlState:
        """The current immutable state."""
        return self._state

    def set(self, name: str, value: Any) -> ControlState:
        """Validate and apply one change; raises ParameterError and keeps the old value."""
        with self._lock:
            self._state = self._state.with_value(name, value)
            state = self._state
        for listener in list(self._listeners):
            listener(name, getattr(state, name), state)
        return state

    def update(self, values: dict[str, Any]) -> ControlState:
        """Apply several changes all-or-nothing (as a preset load does)."""
        with self._lock:
            state = self._state
            for name, value in values.items():
                state = state.with_value(name, value)
            self._state = state
        for name in values:
            for listener in list(self._listeners):
                listener(name, getattr(state, name), state)
        return state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; returns a function that unregisters it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None
