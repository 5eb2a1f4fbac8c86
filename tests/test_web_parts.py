"""The live view's parts without a server: page commands through Actions, the OSCQuery tree,
clip thumbnails and the beat estimate."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from bridge.control.actions import Actions
from bridge.control.namespace import ROUTES
from bridge.control.presets import PresetStore
from bridge.state import PARAMETERS, ControlState, StateStore
from bridge.web.commands import run_command
from bridge.web.hub import LiveHub
from bridge.web.oscquery import find_node, namespace_tree, parameter_of, route_types
from bridge.web.thumbnail import thumbnail


def test_page_commands_validate_like_osc_and_name_their_control(tmp_path: Path) -> None:
    actions = Actions(StateStore(), PresetStore(tmp_path))
    assert run_command(actions, {"type": "set", "name": "alpha", "value": 0.5, "id": 1})["ok"]
    assert actions.store.snapshot().alpha == 0.5
    bad = run_command(actions, {"type": "set", "name": "alpha", "value": "loud", "id": 2})
    assert (bad["ok"], bad["control"], bad["error"]) == (False, "alpha", "alpha: expected a number in [0, 1], got 'loud'")
    assert actions.store.snapshot().alpha == 0.5
    unknown = run_command(actions, {"type": "set", "name": "volumes", "value": 1})
    assert not unknown["ok"] and unknown["error"].startswith("name: expected one of prompt_a")
    assert run_command(actions, {"type": "preset_save", "name": "mine"})["ok"]
    again = run_command(actions, {"type": "preset_save", "name": "mine"})
    assert not again["ok"] and again["control"] == "preset"
    escape = run_command(actions, {"type": "preset_load", "name": "../etc/passwd"})
    assert not escape["ok"] and escape["error"].startswith("name: expected 1-64 of")
    seed = run_command(actions, {"type": "seed_new", "side": "b"})
    assert seed["ok"] and actions.store.snapshot().seed_b == seed["value"]
    assert run_command(actions, {"type": "bank_trigger", "slot": 1})["control"] == "bank"
    assert not run_command(actions, "not an object")["ok"]
    assert "type: expected one of" in run_command(actions, {"type": "rm"})["error"]


def test_tree_has_every_parameter_and_the_fixed_routes() -> None:
    tree = namespace_tree(ControlState(alpha=0.25))
    assert find_node(tree, "/riff/set/alpha")["VALUE"] == [0.25]
    assert find_node(tree, "/riff/set/mute")["VALUE"] == [0]
    for route in ROUTES:
        if not route.is_pattern:
            assert find_node(tree, route.address) is not None, route.address
    assert find_node(tree, "/riff/midi/learn")["TYPE"] == "s"
    assert find_node(tree, "/riff/midi/learn/cancel")["ACCESS"] == 0
    assert all(parameter_of(f"/riff/set/{name}") == name for name in PARAMETERS)
    assert parameter_of("/riff/set/../x") is None
    assert route_types(next(r for r in ROUTES if r.address == "/riff/bank/trigger")) == "is"


def test_thumbnail_is_a_small_png_data_url() -> None:
    url = thumbnail(Image.new("RGB", (400, 512), (10, 20, 30)))
    assert url is not None and url.startswith("data:image/png;base64,")
    assert thumbnail(None) is None


def test_beat_estimate_counts_beats_since_the_bar_changed() -> None:
    hub = LiveHub(Actions(StateStore()), status=lambda: {"current_bar": 3, "bpm": 120.0, "rolling": True})
    live = hub._live()
    assert live["current_bar"] == 3 and live["beat"] == 0 and live["bars"] == 2
    hub._bar_seen = (3, hub._bar_seen[1] - 1.1)   # 1.1 s at 120 BPM: the third beat
    assert hub._live()["beat"] == 2
    hub.notify_beat(7, 1)
    assert hub._live()["beat"] == 1
