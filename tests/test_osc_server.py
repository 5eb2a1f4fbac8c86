"""The OSC server over real UDP sockets: set/get, errors, ping, status, listeners, bundles, quantize."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from control_fixtures import OscPeer, sample_value, wait_until, wrong_values

from bridge import __version__
from bridge.control.namespace import RESERVED_NAMES, STATUS_FIELDS
from bridge.control.packet import encode_bundle, encode_message
from bridge.state import PARAMETERS, ControlState


def _reply(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_set_and_get_every_parameter(surfaces: Any, peer: OscPeer, name: str) -> None:
    value = sample_value(name)
    peer.send(f"/riff/set/{name}", value)
    peer.send(f"/riff/get/{name}")
    assert peer.expect(f"/riff/get/{name}").args == (_reply(value),)
    assert getattr(surfaces.store.snapshot(), name) == value


@pytest.mark.parametrize("name", list(PARAMETERS))
def test_wrong_values_get_errors_and_keep_the_value(surfaces: Any, peer: OscPeer, name: str) -> None:
    before = getattr(surfaces.store.snapshot(), name)
    for value in wrong_values(name):
        peer.send(f"/riff/set/{name}", value)
        error = peer.expect("/riff/error")
        assert error.args[0] == f"/riff/set/{name}"
        assert name in error.args[1] and "expected" in error.args[1]
    assert getattr(surfaces.store.snapshot(), name) == before


def test_python_osc_client_interoperates(surfaces: Any) -> None:
    from pythonosc.udp_client import SimpleUDPClient

    client = SimpleUDPClient(*surfaces.osc.address)
    client.send_message("/riff/set/guidance", 9.5)
    client.send_message("/riff/get/guidance", [])
    reply = next(client.get_messages(2.0))
    assert (reply.address, reply.params) == ("/riff/get/guidance", [9.5])


def test_arity_and_unknown_addresses_are_errors(peer: OscPeer) -> None:
    peer.send("/riff/set/alpha")
    assert "exactly 1" in peer.expect("/riff/error").args[1]
    peer.send("/riff/set/alpha", 0.1, 0.2)
    assert "got 2" in peer.expect("/riff/error").args[1]
    peer.send("/riff/set/nonsense", 1)
    assert peer.expect("/riff/error").args[0] == "/riff/set/nonsense"
    peer.send("/something/else")
    assert "unknown address" in peer.expect("/riff/error").args[1]


def test_ping_status_and_get_all(peer: OscPeer) -> None:
    peer.send("/riff/ping")
    assert peer.expect("/riff/pong").args == (__version__,)
    peer.send("/riff/get/status")
    status = peer.expect("/riff/get/status").args
    assert [key for key, _, _ in STATUS_FIELDS] == ["tempo", "bar", "clips_generated", "last_generation_s",
                                                    "late_clips", "xruns", "beats_per_bar", "beat_unit",
                                                    "tempo_source", "input_level_db", "input_state",
                                                    "input_latency_loops", "input_detail", "link_peers"]
    assert status == (121.5, 17, 9, 1.25, 1, 2, 0, 0, "", 0.0, "", 0, "", 0)
    peer.send("/riff/get/all")
    replies = {m.address: m.args[0] for m in (peer.recv() for _ in PARAMETERS)}
    expected = {f"/riff/get/{k}": _reply(v) for k, v in ControlState().as_dict().items()}
    assert replies.keys() == expected.keys()
    for key, value in expected.items():  # floats travel as float32
        assert replies[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value)


def test_status_reads_live_metrics_names() -> None:
    from bridge.control.osc_router import status_values

    metrics = {"bpm": 266.0, "quarter_bpm": 133.0, "current_bar": 4, "clips_generated": 3,
               "generation_seconds_last": 2.5, "late_clips": 0, "xruns": 1, "rolling": True,
               "beats_per_bar": 7, "beat_unit": 8, "tempo_source": "transport", "link_peers": 3}
    assert status_values(metrics) == [133.0, 4, 3, 2.5, 0, 1, 7, 8, "transport", 0.0, "", 0, "", 3]
    assert status_values({}) == [0.0, 0, 0, 0.0, 0, 0, 0, 0, "", 0.0, "", 0, "", 0]
    metrics.update(input_level_db=-23.5, input_state="silent", input_latency_loops=1, input_detail="why")
    assert status_values(metrics)[9:] == [-23.5, "silent", 1, "why", 3]


def test_status_provider_failure_is_an_error(surfaces: Any, peer: OscPeer) -> None:
    surfaces.osc.router.status = lambda: 1 / 0
    peer.send("/riff/get/status")
    assert "status" in peer.expect("/riff/error").args[1]
    peer.send("/riff/ping")
    peer.expect("/riff/pong")


def test_reserved_names_are_not_parameters() -> None:
    assert not set(RESERVED_NAMES) & set(PARAMETERS)


def test_listeners_get_changes_from_any_surface(surfaces: Any, peer: OscPeer) -> None:
    other = OscPeer(surfaces.osc.address)
    peer.send("/riff/listen/alpha")
    assert peer.expect("/riff/get/alpha").args == (0.0,)
    other.send("/riff/set/alpha", 0.25)
    assert peer.expect("/riff/get/alpha").args == (0.25,)
    surfaces.feed_midi(bytes([0xB0, 21, 127]))  # generic map: CC 21 -> alpha
    assert peer.expect("/riff/get/alpha").args == (1.0,)
    peer.send("/riff/unlisten/alpha")
    time.sleep(0.05)
    other.send("/riff/set/alpha", 0.5)
    assert wait_until(lambda: surfaces.store.snapshot().alpha == 0.5)
    assert peer.drain(0.1) == []
    other.close()


def test_bar_and_beat_ticks(surfaces: Any, peer: OscPeer) -> None:
    peer.send("/riff/listen/bar")
    peer.send("/riff/listen/beat")
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    surfaces.notify_bar(3)
    surfaces.notify_beat(3, 0)
    assert peer.expect("/riff/bar").args == (3,)
    assert peer.expect("/riff/beat").args == (3, 0)
    peer.send("/riff/unlisten/bar")
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    surfaces.notify_bar(4)
    assert peer.drain(0.1) == []


def test_reply_port_is_per_sender_so_other_clients_on_the_host_keep_their_replies(surfaces: Any) -> None:
    pd_like = OscPeer(surfaces.osc.address)      # sends from one port, listens on another
    pd_inbox = OscPeer(surfaces.osc.address)
    sc_like = OscPeer(surfaces.osc.address)      # receives on its sending port
    pd_like.send("/riff/reply_port", pd_inbox.address[1])
    sc_like.send("/riff/ping")
    assert sc_like.expect("/riff/pong").args == (__version__,)
    pd_like.send("/riff/get/alpha")
    assert pd_inbox.expect("/riff/get/alpha").args == (0.0,)
    sc_like.send("/riff/get/bars")
    assert sc_like.expect("/riff/get/bars").args == (2,)
    assert pd_inbox.drain(0.1) == [] and pd_like.drain(0.05) == []
    pd_like.send("/riff/reply_port", 5, "everywhere")
    assert "scope: expected one of sender, host" in pd_inbox.expect("/riff/error").args[1]
    for peer in (pd_like, pd_inbox, sc_like):
        peer.close()


def test_reply_port_host_scope_serves_one_shot_senders(surfaces: Any) -> None:
    setter, one_shot, inbox = (OscPeer(surfaces.osc.address) for _ in range(3))
    setter.send("/riff/reply_port", inbox.address[1], "host")
    one_shot.send("/riff/ping")
    assert inbox.expect("/riff/pong").args == (__version__,)
    setter.send("/riff/reply_port", 0, "host")
    one_shot.send("/riff/ping")
    one_shot.expect("/riff/pong")
    for peer in (setter, one_shot, inbox):
        peer.close()


def test_reply_port_redirects_replies_for_the_sender(surfaces: Any) -> None:
    sender = OscPeer(surfaces.osc.address)
    listener = OscPeer(surfaces.osc.address)
    sender.send("/riff/reply_port", listener.address[1])
    sender.send("/riff/ping")
    assert listener.expect("/riff/pong").args == (__version__,)
    sender.send("/riff/reply_port", 70000)
    assert "65535" in listener.expect("/riff/error").args[1]
    sender.send("/riff/reply_port", 0)
    sender.send("/riff/ping")
    sender.expect("/riff/pong")
    sender.close()
    listener.close()


def test_future_bundles_are_scheduled_not_slept_on(surfaces: Any, peer: OscPeer) -> None:
    due = time.time() + 0.5
    peer.send_raw(encode_bundle(due, [encode_message("/riff/set/alpha", [0.75]),
                                      encode_message("/riff/get/alpha")]))
    started = time.monotonic()
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    assert time.monotonic() - started < 0.3, "the server thread waited for the bundle"
    assert surfaces.store.snapshot().alpha == 0.0
    assert peer.expect("/riff/get/alpha", timeout=2.0).args == (0.75,)
    assert time.time() >= due - 0.01


def test_bundles_too_far_ahead_are_refused(peer: OscPeer) -> None:
    peer.send_raw(encode_bundle(time.time() + 7200, [encode_message("/riff/ping")]))
    assert "timetag" in peer.expect("/riff/error").args[1]


def test_quantized_sets_wait_for_the_bar(surfaces: Any, peer: OscPeer) -> None:
    peer.send("/riff/set/quantize", "bar")
    peer.send("/riff/set/alpha", 0.5)  # no clock yet: immediate
    assert wait_until(lambda: surfaces.store.snapshot().alpha == 0.5)
    surfaces.notify_bar(0)
    peer.send("/riff/set/alpha", 0.75)
    peer.send("/riff/set/alpha", 2.0)  # still validated at once
    assert "alpha" in peer.expect("/riff/error").args[1]
    surfaces.notify_beat(0, 1)
    assert surfaces.store.snapshot().alpha == 0.5
    surfaces.notify_bar(1)
    assert surfaces.store.snapshot().alpha == 0.75


def test_beat_quantize_and_detach(surfaces: Any, peer: OscPeer) -> None:
    peer.send("/riff/set/quantize", "beat")
    assert wait_until(lambda: surfaces.store.snapshot().quantize == "beat")
    surfaces.notify_beat(0, 0)
    peer.send("/riff/set/steps", 40)
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    assert surfaces.store.snapshot().steps == 25
    surfaces.notify_beat(0, 1)
    assert surfaces.store.snapshot().steps == 40
    peer.send("/riff/set/steps", 41)
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    surfaces.detach_clock()
    assert surfaces.store.snapshot().steps == 41
    peer.send("/riff/set/steps", 42)
    assert wait_until(lambda: surfaces.store.snapshot().steps == 42)


def test_bank_trigger_and_new_seed(surfaces: Any, peer: OscPeer) -> None:
    peer.send("/riff/preset/load", "default")
    peer.expect("/riff/preset/loaded")
    peer.send("/riff/bank/trigger", 2, "b")
    assert wait_until(lambda: surfaces.store.snapshot().prompt_b == "jazzy rapping from paris")
    assert surfaces.store.snapshot().seed_b == 7
    peer.send("/riff/bank/trigger", 99)
    assert "slot" in peer.expect("/riff/error").args[1]
    peer.send("/riff/bank/trigger", 1, "c")
    assert "side" in peer.expect("/riff/error").args[1]
    peer.send("/riff/listen/seed_a")
    peer.expect("/riff/get/seed_a")
    peer.send("/riff/seed/new")
    assert peer.expect("/riff/get/seed_a").args[0] == surfaces.store.snapshot().seed_a


def test_port_in_use_is_a_clear_error(surfaces: Any) -> None:
    from bridge.control.osc_server import OscServer
    from bridge.errors import BridgeError

    host, port = surfaces.osc.address
    with pytest.raises(BridgeError, match="osc-port"):
        OscServer(surfaces.actions, host=host, port=port).start()


def test_server_survives_replies_to_closed_ports(surfaces: Any) -> None:
    gone = OscPeer(surfaces.osc.address)
    gone.send("/riff/ping")
    gone.close()  # the pong hits a closed port: ICMP unreachable on the server socket
    time.sleep(0.05)
    peer = OscPeer(surfaces.osc.address)
    for _ in range(3):
        peer.send("/riff/ping")
        peer.expect("/riff/pong")
    peer.close()


def test_scheduler_orders_limits_and_survives_failures() -> None:
    from bridge.control.scheduler import Scheduler
    from bridge.errors import ParameterError

    ran: list[int] = []
    scheduler = Scheduler(max_pending=3, max_ahead=10)
    scheduler.start()
    now = time.time()
    scheduler.schedule(now + 0.06, lambda: ran.append(2))
    scheduler.schedule(now + 0.03, lambda: 1 / 0)
    scheduler.schedule(now + 0.02, lambda: ran.append(1))
    with pytest.raises(ParameterError, match="scheduled bundles"):
        scheduler.schedule(now + 0.05, lambda: None)
    with pytest.raises(ParameterError, match="ahead"):
        scheduler.schedule(now + 60, lambda: None)
    assert wait_until(lambda: ran == [1, 2], timeout=2)
    scheduler.stop()


def test_stop_releases_the_port(surfaces: Any) -> None:
    host, port = surfaces.osc.address
    surfaces.stop()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((host, port))
    probe.close()
