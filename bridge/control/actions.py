"""The one mapping layer: what a gesture on any control surface means for the state.

OSC messages and MIDI events are translated into calls on :class:`Actions`; nothing else
changes the :class:`~bridge.state.StateStore` on behalf of a surface. Discrete changes
(``set``, ``apply``, bank slots, new seeds, preset loads) go through the
:class:`~bridge.control.quantizer.Quantizer`, so they land on the next bar or beat when
``quantize`` asks for it; continuous MIDI controllers call :meth:`Actions.set_now`.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any, Callable

from bridge.control.bank import PromptBank, check_side
from bridge.control.midi_map import CcBinding, ControllerMap
from bridge.control.presets import Preset, PresetStore
from bridge.control.quantizer import Quantizer
from bridge.errors import BridgeError, ParameterError
from bridge.state import SEED_MAX, ControlState, StateStore


class Actions:
    """Named operations over a StateStore, a prompt bank, presets and the controller map.

    Thread-safe: the OSC thread, the scheduler thread and the MIDI thread all call in.
    ``controller_map`` is an immutable snapshot (the loaded map with learned mappings on top).
    """

    def __init__(self, store: StateStore, presets: PresetStore | None = None,
                 quantizer: Quantizer | None = None, rng: random.Random | None = None) -> None:
        self.store = store
        self.presets = presets
        self.quantizer = quantizer or Quantizer(store)
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._bank = PromptBank()
        self._base_map = ControllerMap()
        self._learned = presets.load_learned() if presets else ControllerMap(name="learned")
        self._map = self._base_map.overlay(self._learned)
        #: Freezes the last input loop as a seed image (set by ``serve --audio-in``).
        self.capture: Callable[[str | None], Path] | None = None

    @property
    def bank(self) -> PromptBank:
        """The prompt bank that pads and ``/riff/bank/trigger`` pick from."""
        return self._bank

    @property
    def controller_map(self) -> ControllerMap:
        """The active controller map (loaded map, learned mappings on top)."""
        return self._map

    def set(self, name: str, value: Any) -> bool:
        """Change one parameter (quantized); True when applied now. ParameterError when invalid."""
        return self.quantizer.submit(name, value)

    def apply(self, values: dict[str, Any]) -> bool:
        """Change several parameters all-or-nothing (quantized together)."""
        return self.quantizer.submit_many(values) if values else True

    def set_now(self, name: str, value: Any) -> ControlState:
        """Change one parameter immediately (continuous controllers)."""
        return self.store.set(name, value)

    def trigger_slot(self, number: Any, side: Any = "a") -> dict[str, Any]:
        """Put bank slot ``number`` (1-based) on ``side``; returns the changes made."""
        values = self._bank.slot(number).values(check_side(side))
        self.apply(values)
        return values

    def new_seed(self, side: Any = "a") -> int:
        """A fresh random seed on ``side``; returns it."""
        seed = self.rng.randint(0, SEED_MAX)
        self.set(f"seed_{check_side(side)}", seed)
        return seed

    def use_bank(self, bank: PromptBank) -> None:
        """Make ``bank`` the active prompt bank."""
        self._bank = bank

    def use_controller(self, mapping: ControllerMap) -> None:
        """Make ``mapping`` the base controller map (learned mappings stay on top)."""
        with self._lock:
            self._base_map = mapping
            self._map = mapping.overlay(self._learned)

    def load_preset(self, name: str) -> Preset:
        """Apply preset ``name``: parameters (all-or-nothing, quantized), then bank and map."""
        preset = self._require_presets().load(name)
        self.apply(preset.parameters)
        if preset.bank is not None:
            self.use_bank(preset.bank)
        if preset.controller is not None:
            self.use_controller(preset.controller)
        return preset

    def load_controller(self, name: str) -> ControllerMap:
        """Use the ``[controller]`` table of preset ``name`` as the base map (bank and parameters untouched)."""
        preset = self._require_presets().load(name)
        if preset.controller is None:
            raise ParameterError("controller", "a preset with a [controller] table", name)
        self.use_controller(preset.controller)
        return preset.controller

    def save_preset(self, name: str, overwrite: bool = False) -> Path:
        """Save all current parameters and the bank as user preset ``name``; returns the file."""
        preset = Preset(name, "saved by riff-bridge", self.store.snapshot().as_dict(),
                        self._bank if self._bank.slots else None)
        return self._require_presets().save(preset, overwrite)

    def learn_binding(self, binding: CcBinding) -> tuple[CcBinding, ...]:
        """Add ``binding`` to the learned map, save it, and return the bindings it displaced."""
        with self._lock:
            replaced = tuple(b for b in self._map.cc if b.key == binding.key)
            learned, _ = self._learned.with_cc(binding)
            if self.presets is not None:
                self.presets.save_learned(learned)
            self._learned = learned
            self._map = self._base_map.overlay(learned)
        return replaced

    def capture_input(self, name: str | None = None) -> Path:
        """Freeze the last completed input loop as a seed image and select it; returns the file."""
        if self.capture is None:
            raise BridgeError("input capture: no audio input (start riff-bridge serve with --audio-in)")
        return self.capture(name)

    def _require_presets(self) -> PresetStore:
        if self.presets is None:
            raise BridgeError("presets: no preset folders configured")
        return self.presets
