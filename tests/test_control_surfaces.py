"""ControlSurfaces wiring: start-up with and without the factory folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.control.presets import PresetStore
from bridge.control.surfaces import DEFAULT_CONTROLLER, ControlSurfaces
from bridge.errors import ParameterError
from bridge.state import StateStore


def test_missing_default_controller_map_only_warns(user_presets: Path, tmp_path: Path) -> None:
    store = PresetStore(user_presets, factory_dir=tmp_path / "no-factory")
    surfaces = ControlSurfaces(StateStore(), presets=store, osc_port=None, controller=DEFAULT_CONTROLLER)
    surfaces.start()
    assert surfaces.actions.controller_map.cc == ()
    surfaces.stop()
    with pytest.raises(ParameterError, match="preset"):
        ControlSurfaces(StateStore(), presets=store, osc_port=None, controller="nanokontrol2").start()


def test_start_loads_controller_and_preset_and_feeds_midi(preset_store: PresetStore) -> None:
    with ControlSurfaces(StateStore(), presets=preset_store, osc_port=None, preset="ambient",
                         controller="nanokontrol2") as surfaces:
        assert surfaces.store.snapshot().bpm == 80.0
        surfaces.feed_midi(bytes([0xB0, 0, 127]))  # nanoKONTROL2 slider 1 -> alpha
        assert surfaces.store.snapshot().alpha == 1.0
        surfaces.feed_midi(bytes([0xB0, 48, 127]))  # M button 1 -> ambient slot 1 on side B
        assert surfaces.store.snapshot().prompt_b == "ambient drone with soft pads"
        surfaces.notify_bar(0)  # without OSC, ticks still drive the quantizer
        assert surfaces.actions.quantizer.clock_attached
