"""The Quantizer and Actions: when discrete changes land, and that they land together."""

from __future__ import annotations

import pytest

from bridge.control.actions import Actions
from bridge.control.presets import PresetStore
from bridge.control.quantizer import Quantizer
from bridge.errors import ParameterError
from bridge.state import StateStore


def ticking(mode: str) -> Quantizer:
    quantizer = Quantizer(StateStore())
    quantizer.submit("quantize", mode)
    quantizer.notify_bar(0)
    return quantizer


def test_without_a_clock_changes_apply_at_once() -> None:
    quantizer = Quantizer(StateStore())
    quantizer.submit("quantize", "bar")
    assert quantizer.submit("alpha", 0.5) is True
    assert quantizer.store.snapshot().alpha == 0.5 and not quantizer.clock_attached


def test_held_changes_apply_together_and_later_values_win() -> None:
    quantizer = ticking("bar")
    seen: list[tuple[str, object]] = []
    quantizer.store.subscribe(lambda name, value, state: seen.append((name, state.alpha, state.steps)))
    assert quantizer.submit_many({"alpha": 0.25, "steps": 30}) is False
    quantizer.submit("alpha", 0.75)
    assert quantizer.held() == {"steps": 30, "alpha": 0.75}
    quantizer.notify_beat(0, 2)
    assert seen == []
    quantizer.notify_bar(1)
    assert {s[1:] for s in seen} == {(0.75, 30)}  # one consistent snapshot for both listeners
    assert quantizer.held() == {}


def test_invalid_changes_fail_at_once_and_hold_nothing() -> None:
    quantizer = ticking("beat")
    with pytest.raises(ParameterError, match="steps"):
        quantizer.submit_many({"alpha": 0.5, "steps": 0})
    with pytest.raises(ParameterError, match="name"):
        quantizer.submit("volumes", 1)
    assert quantizer.held() == {}


def test_quantize_off_and_detach_release_what_is_held() -> None:
    quantizer = ticking("bar")
    quantizer.submit("alpha", 0.5)
    quantizer.submit("quantize", "off")
    assert quantizer.store.snapshot().alpha == 0.5
    quantizer.submit("quantize", "beat")
    quantizer.submit("alpha", 0.6)
    quantizer.detach_clock()
    assert quantizer.store.snapshot().alpha == 0.6 and not quantizer.clock_attached


def test_immediate_change_drops_an_older_held_one() -> None:
    quantizer = ticking("bar")
    quantizer.submit("alpha", 0.5)
    quantizer.submit_many({"quantize": "beat", "alpha": 0.9})  # quantize changes apply at once
    quantizer.notify_bar(1)
    assert quantizer.store.snapshot().alpha == 0.9


def test_preset_loads_bank_slots_and_seeds_are_quantized(preset_store: PresetStore) -> None:
    actions = Actions(StateStore(), preset_store)
    actions.load_preset("default")
    actions.set("quantize", "bar")
    actions.quantizer.notify_bar(0)
    actions.load_preset("techno")
    actions.trigger_slot(3, "b")
    actions.new_seed("a")
    state = actions.store.snapshot()
    assert (state.bpm, state.seed_a, state.prompt_b) == (120.0, 42, "funky synth solo")
    actions.set_now("volume", 0.5)  # continuous controllers are never held
    assert actions.store.snapshot().volume == 0.5
    actions.quantizer.notify_bar(1)
    state = actions.store.snapshot()
    assert state.bpm == 128.0 and state.prompt_b == "industrial techno, distorted kick" and state.seed_a != 42

