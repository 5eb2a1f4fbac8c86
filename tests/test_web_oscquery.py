"""OSCQuery and the page's WebSocket on a real server: HOST_INFO and the tree against the
proposal's keys, every parameter with its range, LISTEN/IGNORE of OSC changes, page commands
validated like OSC, several pages at once, the token, and mDNS advertising (in a network
namespace of its own, so no multicast leaves the machine)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from bridge.control.packet import parse_datagram
from bridge.control.surfaces import ControlSurfaces
from bridge.errors import BridgeError
from bridge.state import PARAMETERS, StateStore
from bridge.web.server import WebOptions
from bridge.web.view import WebView
from control_fixtures import OscPeer

HOST_INFO_KEYS = {"NAME", "EXTENSIONS", "OSC_IP", "OSC_PORT", "OSC_TRANSPORT", "WS_IP", "WS_PORT"}
#: Node attributes the proposal defines.
NODE_KEYS = {"FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION", "TAGS",
             "EXTENDED_TYPE", "UNIT", "CRITICAL", "CLIPMODE", "OVERLOADS", "HOST_INFO"}
OSC_TYPE_TAGS = set("ifsbhtdScrmTFNI[]")


@pytest.fixture
def view(tmp_path: Any) -> Any:
    from bridge.control.presets import PresetStore

    store = StateStore()
    surfaces = ControlSurfaces(store, presets=PresetStore(tmp_path / "presets"), osc_port=0).start()
    web = WebView(surfaces, WebOptions("127.0.0.1", 0)).start()
    try:
        yield web, OscPeer(surfaces.osc.address)
    finally:
        web.stop()
        surfaces.stop()


def _get(url: str, accept: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            return response.status, json.loads(body) if body and "json" in response.headers.get("Content-Type", "") else body
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [node]
    for child in node.get("CONTENTS", {}).values():
        nodes.extend(_walk(child))
    return nodes


def test_host_info_has_the_proposals_keys(view: Any) -> None:
    web, peer = view
    status, info = _get(web.url + "?HOST_INFO")
    assert status == 200
    assert HOST_INFO_KEYS <= set(info)
    assert info["OSC_PORT"] == peer.server[1] and info["OSC_TRANSPORT"] == "UDP"
    assert info["WS_PORT"] == web.server.address[1]
    assert all(isinstance(v, bool) for v in info["EXTENSIONS"].values())
    assert info["EXTENSIONS"]["LISTEN"] and info["EXTENSIONS"]["VALUE"] and info["EXTENSIONS"]["RANGE"]


def test_tree_nodes_use_only_proposal_keys_and_hold_every_parameter_with_its_range(view: Any) -> None:
    web, _ = view
    status, tree = _get(web.url)
    assert status == 200 and tree["FULL_PATH"] == "/"
    for node in _walk(tree):
        assert set(node) <= NODE_KEYS, node["FULL_PATH"]
        assert node["ACCESS"] in (0, 1, 2, 3)
        assert set(node.get("TYPE", "")) <= OSC_TYPE_TAGS
        for name, child in node.get("CONTENTS", {}).items():
            assert child["FULL_PATH"] == node["FULL_PATH"].rstrip("/") + "/" + name
    params = tree["CONTENTS"]["riff"]["CONTENTS"]["set"]["CONTENTS"]
    assert set(params) == set(PARAMETERS)
    for name, spec in PARAMETERS.items():
        node = params[name]
        assert node["ACCESS"] == 3 and len(node["VALUE"]) == len(node["TYPE"]) == 1
        if spec.kind in ("int", "float"):
            assert node["RANGE"] == [{"MIN": spec.low, "MAX": spec.high}], name
        elif spec.kind == "choice":
            assert node["RANGE"] == [{"VALS": list(spec.choices)}]
        elif spec.kind == "bool":
            assert node["RANGE"] == [{"MIN": 0, "MAX": 1}]
        else:
            assert "RANGE" not in node and node["TYPE"] == "s"


def test_attribute_queries_and_errors(view: Any) -> None:
    web, peer = view
    peer.send("/riff/set/guidance", 9.5)
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    assert _get(web.url + "riff/set/guidance?VALUE") == (200, {"VALUE": [9.5]})
    assert _get(web.url + "riff/set/guidance?RANGE") == (200, {"RANGE": [{"MIN": 0.0, "MAX": 30.0}]})
    assert _get(web.url + "riff/set/prompt_a?RANGE")[0] == 204
    assert _get(web.url + "riff/set/guidance?NONSENSE")[0] == 400
    assert _get(web.url + "riff/set/volumes")[0] == 404
    status, page = _get(web.url, accept="text/html,application/xhtml+xml")
    assert status == 200 and b"<title>riff-bridge live</title>" in page


async def _listen(url: str, peer: OscPeer) -> list[tuple[str, Any, float]]:
    import aiohttp

    got: list[tuple[str, Any, float]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url.replace("http", "ws")) as ws:
        await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": "/riff/set/alpha"}))
        await asyncio.sleep(0.2)
        sent = time.monotonic()
        peer.send("/riff/set/alpha", 0.25)
        message = await ws.receive(timeout=5)
        osc = parse_datagram(message.data)[0]
        got.append((osc.address, osc.args[0], time.monotonic() - sent))
        await ws.send_str(json.dumps({"COMMAND": "IGNORE", "DATA": "/riff/set/alpha"}))
        await asyncio.sleep(0.2)
        peer.send("/riff/set/alpha", 0.5)
        try:
            message = await ws.receive(timeout=1.0)
            got.append(("unexpected", message.data, 0.0))
        except asyncio.TimeoutError:
            pass
    return got


def test_listen_delivers_osc_changes_and_ignore_stops_them(view: Any) -> None:
    web, peer = view
    got = asyncio.run(_listen(web.url, peer))
    assert len(got) == 1, got
    address, value, seconds = got[0]
    assert address == "/riff/set/alpha" and abs(value - 0.25) < 1e-6
    print(f"LISTEN: OSC change arrived over the WebSocket in {seconds * 1000:.1f} ms")


async def _pages(url: str, peer: OscPeer) -> dict[str, Any]:
    import aiohttp

    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        one = await session.ws_connect(url.replace("http", "ws") + "live")
        two = await session.ws_connect(url.replace("http", "ws") + "live")
        hello = json.loads((await one.receive(timeout=5)).data)
        await two.receive(timeout=5)
        out["hello"] = hello
        sent = time.monotonic()
        peer.send("/riff/set/denoising", 0.4)
        out["osc_to_pages"] = [await _until(ws, "param") for ws in (one, two)]
        out["osc_seconds"] = time.monotonic() - sent
        await one.send_str(json.dumps({"type": "set", "name": "steps", "value": 33, "id": 7}))
        out["result"] = await _until(one, "result")
        out["other_page"] = await _until(two, "param")
        await one.send_str(json.dumps({"type": "set", "name": "steps", "value": 500, "id": 8}))
        out["bad"] = await _until(one, "result")
        await one.send_str(json.dumps({"type": "seed_new", "side": "c", "id": 9}))
        out["bad_side"] = await _until(one, "result")
        await one.close()
        await two.close()
    return out


async def _until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads((await ws.receive(timeout=5)).data)
        if message["type"] == kind:
            return message


def test_pages_follow_osc_and_page_changes_are_validated_like_osc(view: Any) -> None:
    web, peer = view
    out = asyncio.run(_pages(web.url, peer))
    assert out["hello"]["state"]["denoising"] == 0.75
    assert {p["name"] for p in out["hello"]["parameters"]} == set(PARAMETERS)
    assert all(m["name"] == "denoising" and abs(m["value"] - 0.4) < 1e-6 for m in out["osc_to_pages"])
    print(f"OSC -> two pages: {out['osc_seconds'] * 1000:.1f} ms")
    assert out["osc_seconds"] < 0.5
    assert out["result"]["ok"] and out["other_page"] == {"type": "param", "name": "steps", "value": 33}
    assert not out["bad"]["ok"] and out["bad"]["control"] == "steps"
    assert out["bad"]["error"] == "steps: expected an integer in [1, 150], got 500"
    assert not out["bad_side"]["ok"] and "side: expected a or b" in out["bad_side"]["error"]
    assert web.hub.store.snapshot().steps == 33


def test_beyond_loopback_needs_a_token_and_the_token_is_checked() -> None:
    with pytest.raises(BridgeError, match="web-host: .* needs a token"):
        WebOptions("0.0.0.0", 0)
    store = StateStore()
    surfaces = ControlSurfaces(store, osc_port=0).start()
    web = WebView(surfaces, WebOptions("127.0.0.1", 0, token="s3cret")).start()
    try:
        base = web.url.split("?")[0]
        assert _get(base + "?HOST_INFO")[0] == 401
        assert _get(base + "?HOST_INFO&token=wrong")[0] == 401
        assert _get(base + "?HOST_INFO&token=s3cret")[0] == 200
    finally:
        web.stop()
        surfaces.stop()


ADVERTISE_SCRIPT = textwrap.dedent("""
    import socket, sys, time
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf
    from bridge.control.surfaces import ControlSurfaces
    from bridge.state import StateStore
    from bridge.web.server import WebOptions
    from bridge.web.view import WebView

    surfaces = ControlSurfaces(StateStore(), osc_port=0).start()
    web = WebView(surfaces, WebOptions("127.0.0.1", 0), advertise=True).start()
    web.announce()
    found = {}

    class Listener:
        def add_service(self, zc, kind, name):
            info = zc.get_service_info(kind, name, timeout=3000)
            found[kind] = (name, info.port, [socket.inet_ntoa(a) for a in info.addresses])
        update_service = add_service
        def remove_service(self, zc, kind, name):
            pass

    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    browsers = [ServiceBrowser(zc, kind, Listener()) for kind in ("_oscjson._tcp.local.", "_osc._udp.local.")]
    deadline = time.monotonic() + 15
    while len(found) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    print("FOUND", found, "WEB", web.server.address[1], "OSC", surfaces.osc.address[1], flush=True)
    zc.close(); web.stop(); surfaces.stop()
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_advertise_publishes_oscjson_and_osc_in_a_private_network_namespace() -> None:
    setup = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && "
    result = subprocess.run(["unshare", "--net", "sh", "-c", setup + f'exec "{sys.executable}" -c "$0"',
                             ADVERTISE_SCRIPT], capture_output=True, text=True, timeout=60)
    line = next((l for l in result.stdout.splitlines() if l.startswith("FOUND")), "")
    assert line, result.stdout + result.stderr
    found = ast.literal_eval(line.split(" WEB ")[0][len("FOUND "):])
    web_port, osc_port = (int(x) for x in line.split(" WEB ")[1].split(" OSC "))
    assert found["_oscjson._tcp.local."][1] == web_port
    assert found["_osc._udp.local."][1] == osc_port
    assert found["_oscjson._tcp.local."][2] == ["127.0.0.1"]


async def _origins(url: str) -> list[int]:
    import aiohttp

    statuses = []
    async with aiohttp.ClientSession() as session:
        for origin in (None, url.rstrip("/"), "http://evil.example"):
            headers = {"Origin": origin} if origin else {}
            try:
                async with session.ws_connect(url.replace("http", "ws") + "live", headers=headers) as ws:
                    statuses.append(101)
                    await ws.close()
            except aiohttp.WSServerHandshakeError as err:
                statuses.append(err.status)
    return statuses


def test_a_page_of_another_site_cannot_open_the_websocket(view: Any) -> None:
    web, _ = view
    assert asyncio.run(_origins(web.url)) == [101, 101, 403]
