"""MidiMapper, controller maps and MIDI learn with mido messages (no MIDI port needed)."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

import mido
import pytest

from bridge.control.actions import Actions
from bridge.control.bank import PromptBank, Slot
from bridge.control.learn import MidiLearn
from bridge.control.midi_map import CURVES, CcBinding, ControllerMap, TriggerBinding
from bridge.control.midi_mapper import MidiMapper
from bridge.control.presets import LEARNED_NAME, PresetStore
from bridge.errors import ParameterError
from bridge.state import StateStore


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=channel)


@pytest.fixture
def rig(preset_store: PresetStore) -> Any:
    """Actions over a fresh store with a small map and bank, a learn, and a mapper recording clock."""
    actions = Actions(StateStore(), preset_store, rng=random.Random(5))
    actions.use_bank(PromptBank((Slot("one", 1), Slot("two", 2, "no drums", "seed.png"))))
    actions.use_controller(ControllerMap(
        name="test",
        cc=(CcBinding("alpha", 1), CcBinding("guidance", 2, channel=2, low=1, high=15, curve="exp"),
            CcBinding("bpm", 3, low=60, high=180, bits=14), CcBinding("mute", 64, mode="toggle"),
            CcBinding("quantize", 5), CcBinding("steps", 6, low=10, high=50, curve="log")),
        triggers=(TriggerBinding("note", 36, slot=1, side="a"), TriggerBinding("note", 37, 10, slot=2, side="b"),
                  TriggerBinding("note", 40, action="new_seed", side="b"), TriggerBinding("cc", 41, slot=2)),
        programs=("default", "ambient", "techno"),
    ))
    clock: list[mido.Message] = []
    errors: list[str] = []
    learn = MidiLearn(actions)
    mapper = MidiMapper(actions, learn, clock=clock.append, on_error=errors.append)
    return actions, mapper, learn, clock, errors


def state(rig: Any) -> Any:
    return rig[0].store.snapshot()


def test_cc_linear_range_and_channel_filter(rig: Any) -> None:
    actions, mapper, *_ = rig
    mapper.handle(cc(1, 127))
    assert state(rig).alpha == 1.0
    mapper.handle(cc(1, 0, channel=9))  # any channel
    assert state(rig).alpha == 0.0
    mapper.handle(cc(2, 127, channel=0))  # bound to channel 2 only
    assert state(rig).guidance == 7.0
    mapper.handle(cc(2, 127, channel=1))
    assert state(rig).guidance == 15.0


def test_curves_are_monotonic_inverse_shapes() -> None:
    xs = [i / 127 for i in range(128)]
    for curve in CURVES.values():
        ys = [curve(x) for x in xs]
        assert ys[0] == pytest.approx(0) and ys[-1] == pytest.approx(1)
        assert ys == sorted(ys)
    assert CURVES["exp"](0.5) < 0.5 < CURVES["log"](0.5)
    assert CURVES["log"](CURVES["exp"](0.3)) == pytest.approx(0.3)
    binding = CcBinding("guidance", 2, low=1, high=15, curve="exp")
    assert binding.value(64) == pytest.approx(1 + 14 * CURVES["exp"](64 / 127))


def test_14_bit_pairs_msb_then_lsb(rig: Any) -> None:
    _, mapper, *_ = rig
    mapper.handle(cc(3, 64))  # MSB: LSB assumed 0
    assert state(rig).bpm == pytest.approx(60 + 120 * (64 << 7) / 16383)
    mapper.handle(cc(35, 127))  # LSB on cc + 32
    assert state(rig).bpm == pytest.approx(60 + 120 * ((64 << 7) | 127) / 16383)
    mapper.handle(cc(3, 127))
    mapper.handle(cc(35, 127))
    assert state(rig).bpm == 180.0


def test_int_choice_and_toggle(rig: Any) -> None:
    _, mapper, *_ = rig
    mapper.handle(cc(6, 127))
    assert state(rig).steps == 50
    mapper.handle(cc(6, 0))
    assert state(rig).steps == 10
    for value, choice in ((0, "off"), (64, "beat"), (127, "bar")):
        mapper.handle(cc(5, value))
        assert state(rig).quantize == choice
    for value, muted in ((127, True), (0, True), (127, False), (100, False), (0, False), (127, True)):
        mapper.handle(cc(64, value))
        assert state(rig).mute is muted


def test_notes_and_buttons_trigger_slots_and_seeds(rig: Any) -> None:
    _, mapper, *_ = rig
    mapper.handle(mido.Message("note_on", note=36, velocity=90))
    assert (state(rig).prompt_a, state(rig).seed_a) == ("one", 1)
    mapper.handle(mido.Message("note_on", note=37, velocity=90, channel=0))  # wrong channel
    assert state(rig).prompt_b != "two"
    mapper.handle(mido.Message("note_on", note=37, velocity=0, channel=9))  # velocity 0 = note off
    assert state(rig).prompt_b != "two"
    mapper.handle(mido.Message("note_on", note=37, velocity=1, channel=9))
    assert (state(rig).prompt_b, state(rig).seed_b, state(rig).negative, state(rig).seed_image) == \
        ("two", 2, "no drums", "seed.png")
    mapper.handle(mido.Message("note_on", note=40, velocity=100))
    assert state(rig).seed_b == random.Random(5).randint(0, 2**32 - 1)
    mapper.handle(cc(41, 127))
    mapper.handle(cc(41, 0))
    assert state(rig).prompt_a == "two"


def test_program_change_loads_presets_with_bank_select(rig: Any) -> None:
    _, mapper, _, _, errors = rig
    mapper.handle(mido.Message("program_change", program=2))
    assert state(rig).bpm == 128.0 and state(rig).bars == 1  # techno
    mapper.handle(mido.Message("program_change", program=1))
    assert state(rig).bpm == 80.0  # ambient
    mapper.handle(cc(0, 1))  # bank 1: program 1 -> index 129, not in the list
    mapper.handle(mido.Message("program_change", program=1))
    assert "program: expected a program in [0, 2]" in errors[-1]
    assert state(rig).bpm == 80.0


def test_clock_messages_go_to_the_hook_and_others_are_ignored(rig: Any) -> None:
    _, mapper, _, clock, errors = rig
    for data in ([0xFA], [0xF8], [0xF8], [0xFB], [0xFC], [0xF2, 0x10, 0x00]):
        mapper.handle_bytes(bytes(data))
    assert [m.type for m in clock] == ["start", "clock", "clock", "continue", "stop", "songpos"]
    mapper.handle(mido.Message("pitchwheel", pitch=100))
    mapper.handle(mido.Message("sysex", data=[1, 2, 3]))
    mapper.handle_bytes(b"\x80")  # truncated note-off
    assert len(errors) == 1 and "MIDI bytes" in errors[0]


def test_learn_maps_the_next_cc_and_saves_it(rig: Any, preset_store: PresetStore) -> None:
    actions, mapper, learn, *_ = rig
    done: list[Any] = []
    learn.arm("denoising", lambda binding, replaced: done.append((binding, replaced)))
    mapper.handle(cc(20, 100, channel=3))  # consumed by learning
    assert state(rig).denoising == 0.75
    assert done[0][0] == CcBinding("denoising", 20, channel=4) and done[0][1] == ()
    mapper.handle(cc(20, 127, channel=3))
    assert state(rig).denoising == 1.0
    learn.arm("volume")
    mapper.handle(cc(1, 0, channel=0))  # alpha's CC on any channel; a new key on channel 1
    learned = PresetStore(preset_store.user_dir).load(LEARNED_NAME).controller
    assert [(b.param, b.cc, b.channel) for b in learned.cc] == [("denoising", 20, 4), ("volume", 1, 1)]
    mapper.handle(cc(1, 127, channel=0))
    assert state(rig).volume == 2.0 and state(rig).alpha == 1.0  # both bindings apply on channel 1


def test_learn_replaces_and_reports_same_controller(rig: Any, preset_store: PresetStore) -> None:
    actions, mapper, learn, *_ = rig
    learn.arm("guidance")
    mapper.handle(cc(9, 1, channel=0))
    replaced: list[Any] = []
    learn.arm("denoising", lambda binding, old: replaced.extend(old))
    mapper.handle(cc(9, 1, channel=0))
    assert [b.param for b in replaced] == ["guidance"]
    path = preset_store.user_dir / f"{LEARNED_NAME}.toml"
    doc = tomllib.loads(path.read_text())
    assert doc["controller"]["cc"] == [{"param": "denoising", "cc": 9, "channel": 1}]
    assert (path.parent / f"{LEARNED_NAME}.toml.bak").is_file()
    assert learn.armed is None
    fresh = Actions(StateStore(), PresetStore(preset_store.user_dir))
    assert CcBinding("denoising", 9, channel=1) in fresh.controller_map.cc


def test_learn_refuses_text_parameters_and_can_be_cancelled(rig: Any) -> None:
    _, mapper, learn, *_ = rig
    with pytest.raises(ParameterError, match="param"):
        learn.arm("prompt_a")
    learn.arm("alpha")
    assert learn.cancel() and learn.armed is None
    mapper.handle(cc(30, 5))
    assert all(b.cc != 30 for b in rig[0].controller_map.cc)


@pytest.mark.parametrize("table, needle", [
    ({"cc": [{"cc": 1, "param": "prompt_a"}]}, "param"),
    ({"cc": [{"cc": 128, "param": "alpha"}]}, "cc"),
    ({"cc": [{"cc": 40, "param": "alpha", "bits": 14}]}, "cc"),
    ({"cc": [{"cc": 1, "param": "alpha", "curve": "cubic"}]}, "curve"),
    ({"cc": [{"cc": 1, "param": "alpha", "channel": 17}]}, "channel"),
    ({"cc": [{"cc": 1, "param": "alpha", "high": 3.0}]}, "alpha"),
    ({"cc": [{"cc": 1, "param": "alpha", "mode": "toggle"}]}, "mode"),
    ({"cc": [{"cc": 1, "param": "alpha", "knob": 1}]}, "knob"),
    ({"note": [{"note": 36, "side": "c"}]}, "side"),
    ({"note": [{"note": 36, "action": "explode"}]}, "action"),
    ({"button": [{"note": 3}]}, "note"),
    ({"programs": "default"}, "programs"),
    ({"cc": {"cc": 1}}, "array"),
])
def test_bad_maps_name_the_key(table: dict[str, Any], needle: str) -> None:
    with pytest.raises(ParameterError) as info:
        ControllerMap.from_toml(table)
    assert needle in str(info.value)


def test_map_toml_round_trip_and_overlay() -> None:
    base = ControllerMap("base", (CcBinding("alpha", 1), CcBinding("volume", 2)),
                         (TriggerBinding("note", 36),), ("default",))
    assert ControllerMap.from_toml(base.to_toml()) == base
    top = ControllerMap("top", (CcBinding("guidance", 1),), (TriggerBinding("note", 36, slot=3),))
    merged = base.overlay(top)
    assert [b.param for b in merged.cc] == ["volume", "guidance"]
    assert merged.triggers == top.triggers and merged.programs == ("default",)


def test_factory_controller_maps_load(preset_store: PresetStore) -> None:
    nano = preset_store.load("nanokontrol2").controller
    assert [b.cc for b in nano.cc if b.channel == 1][:8] == list(range(8))
    xl = preset_store.load("launchcontrol-xl").controller
    assert {b.channel for b in xl.cc} == {9} and xl.program_channel == 9
    generic = preset_store.load("generic-8knob").controller
    assert sorted(b.cc for b in generic.cc) == list(range(21, 29))


def test_mapper_never_raises(rig: Any, tmp_path: Path) -> None:
    actions, mapper, _, _, errors = rig
    actions.use_controller(ControllerMap(programs=("no-such-preset",)))
    mapper.handle(mido.Message("program_change", program=0))
    assert "no-such-preset" in errors[-1]
