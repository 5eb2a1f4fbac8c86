"""Preset files: safe names, containment, no silent overwrite, validation, factory content, OSC access."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from control_fixtures import OscPeer

from bridge.control.actions import Actions
from bridge.control.midi_map import CcBinding
from bridge.control.presets import FACTORY_DIR, Preset, PresetStore, check_name, contained_path
from bridge.errors import InputFileError, ParameterError
from bridge.state import ControlState, StateStore

BAD_NAMES = ["", "../escape", "..", "a/b", "a\\b", "/etc/passwd", ".hidden", "x" * 65, "a..b",
             "name with space", "nul\x00", "ünïcode", "C:evil", 5, None]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused(name: Any) -> None:
    with pytest.raises(ParameterError, match="name"):
        check_name(name)


@pytest.mark.parametrize("name", ["default", "my-set_2", "v1.2", "A", "-x"])
def test_safe_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_symlinks_out_of_the_folder_are_refused(user_presets: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text('[preset]\ndescription = "outside"\n')
    (user_presets / "link.toml").symlink_to(outside)
    with pytest.raises(ParameterError, match="inside"):
        contained_path(user_presets, "link")
    with pytest.raises(ParameterError):
        PresetStore(user_presets).load("link")


def test_save_never_overwrites_silently(preset_store: PresetStore) -> None:
    first = Preset("mine", "first", {"alpha": 0.25})
    path = preset_store.save(first)
    with pytest.raises(InputFileError, match="already exists"):
        preset_store.save(Preset("mine", "second", {"alpha": 0.5}))
    assert preset_store.load("mine").parameters == {"alpha": 0.25}
    preset_store.save(Preset("mine", "second", {"alpha": 0.5}), overwrite=True)
    assert preset_store.load("mine").parameters == {"alpha": 0.5}
    backup = path.with_name("mine.toml.bak")
    assert tomllib.loads(backup.read_text())["parameters"] == {"alpha": 0.25}
    assert sorted(p.name for p in path.parent.iterdir()) == ["mine.toml", "mine.toml.bak"]


def test_user_presets_shadow_factory_and_are_listed(preset_store: PresetStore) -> None:
    assert preset_store.names()["default"] == "factory"
    preset_store.save(Preset("default", "my default", {"bpm": 99.0}))
    assert preset_store.names()["default"] == "user"
    assert preset_store.load("default").parameters == {"bpm": 99.0}
    assert (FACTORY_DIR / "default.toml").read_text().count("bpm = 120.0") == 1


@pytest.mark.parametrize("text, needle", [
    ("[parameters\n", "not valid TOML"),
    ("[extra]\nx = 1\n", "table"),
    ("[parameters]\nalpha = 3.0\n", "alpha"),
    ("[parameters]\nloudness = 1\n", "loudness"),
    ("[preset]\ndescription = 'x'\nauthor = 'me'\n", "preset"),
    ("[[bank.slot]]\nseed = 3\n", "prompt required"),
    ("[[bank.slot]]\nprompt = 'x'\nseed = -1\n", "bank.slot[1].seed_a"),
    ("[controller]\n[[controller.cc]]\ncc = 1\nparam = 'alpha'\ncurve = 'wobbly'\n", "controller.cc[1].curve"),
])
def test_invalid_files_name_the_file_and_the_key(user_presets: Path, text: str, needle: str) -> None:
    (user_presets / "broken.toml").write_text(text)
    with pytest.raises(InputFileError) as info:
        PresetStore(user_presets).load("broken")
    assert str(user_presets / "broken.toml") in str(info.value) and needle in str(info.value)


def test_oversized_files_are_refused(user_presets: Path) -> None:
    (user_presets / "huge.toml").write_text("# " + "x" * 300_000 + "\n")
    with pytest.raises(InputFileError, match="larger than"):
        PresetStore(user_presets).load("huge")


def test_every_factory_preset_loads_and_default_matches_the_code(preset_store: PresetStore) -> None:
    names = preset_store.names()
    assert {"default", "ambient", "techno", "generic-8knob", "nanokontrol2", "launchcontrol-xl"} <= set(names)
    for name in names:
        preset_store.load(name)
    assert preset_store.load("default").parameters == ControlState().as_dict()
    for name in ("default", "ambient", "techno"):
        assert len(preset_store.load(name).bank.slots) == 8


def test_actions_save_and_load_round_trip(preset_store: PresetStore) -> None:
    actions = Actions(StateStore(), preset_store)
    actions.load_preset("ambient")
    actions.set("prompt_a", "saved prompt")
    actions.save_preset("session-1")
    other = Actions(StateStore(), preset_store)
    other.load_preset("session-1")
    assert other.store.snapshot() == actions.store.snapshot()
    assert other.bank == actions.bank


def test_learned_map_persists_for_the_next_session(user_presets: Path) -> None:
    first = Actions(StateStore(), PresetStore(user_presets))
    first.learn_binding(CcBinding("guidance", 12, channel=2))
    second = Actions(StateStore(), PresetStore(user_presets))
    second.load_controller("generic-8knob")
    assert CcBinding("guidance", 12, channel=2) in second.controller_map.cc


def test_osc_presets_load_save_list_and_refuse_escapes(surfaces: Any, peer: OscPeer,
                                                       user_presets: Path, tmp_path: Path) -> None:
    peer.send("/riff/preset/list")
    listed = peer.expect("/riff/preset/list").args
    assert "default" in listed and "techno" in listed
    peer.send("/riff/preset/load", "techno")
    assert peer.expect("/riff/preset/loaded").args == ("techno",)
    assert surfaces.store.snapshot().bpm == 128.0
    peer.send("/riff/preset/save", "live")
    assert peer.expect("/riff/preset/saved").args == ("live",)
    peer.send("/riff/preset/save", "live")
    assert "already exists" in peer.expect("/riff/error").args[1]
    peer.send("/riff/preset/save", "live", 1)
    peer.expect("/riff/preset/saved")
    for name in ["../../evil", "/tmp/evil", "..", "a/b"]:
        peer.send("/riff/preset/save", name)
        assert "name: expected" in peer.expect("/riff/error").args[1]
        peer.send("/riff/preset/load", name)
        assert "name: expected" in peer.expect("/riff/error").args[1]
    peer.send("/riff/preset/load", "missing")
    assert "preset: expected one of" in peer.expect("/riff/error").args[1]
    peer.send("/riff/preset/load", 5)
    assert "name: expected a string" in peer.expect("/riff/error").args[1]
    assert sorted(os.listdir(user_presets)) == ["live.toml", "live.toml.bak"]
    assert not list(tmp_path.glob("evil*")) and not Path("/tmp/evil.toml").exists()
