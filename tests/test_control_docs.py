"""Docs and examples cannot drift from the code: generated tables, README section, addresses, scripts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from control_fixtures import OscPeer

from bridge.control import reference
from bridge.control.namespace import ERROR_SOURCES, REPLIES, ROUTES, AddressError, resolve

REPO = Path(__file__).resolve().parent.parent
CONTROL_MD = REPO / "docs" / "CONTROL.md"
README = REPO / "README.md"
EXAMPLES = REPO / "examples"
ADDRESS = re.compile(r"/riff(?:/[A-Za-z_<>*]+)+/?")
REGENERATE = "run: python -m bridge.control.reference docs/CONTROL.md README.md"


def test_control_md_tables_are_generated_from_the_code() -> None:
    text = CONTROL_MD.read_text(encoding="utf-8")
    assert set(reference.block_names(text)) == set(reference.GENERATORS)
    assert reference.update_document(text) == text, f"docs/CONTROL.md is stale; {REGENERATE}"


def test_readme_control_section_matches_control_md() -> None:
    section = reference.control_section(CONTROL_MD.read_text(encoding="utf-8"))
    assert section is not None and "generated:osc" in section and "generated:midi-map" in section
    readme = README.read_text(encoding="utf-8") if README.is_file() else ""
    pasted = reference.control_section(readme)
    if pasted is None or pasted == "<!-- control:begin -->\n<!-- control:end -->":
        pytest.skip("README.md's control section is not pasted in yet (copy it from docs/CONTROL.md)")
    assert reference.update_document(readme) == readme, f"README.md is stale; {REGENERATE}"
    assert pasted == section, \
        "README's control section differs from docs/CONTROL.md's; copy it over"


def test_reference_cli_refreshes_and_checks(tmp_path: Path) -> None:
    stale = tmp_path / "doc.md"
    stale.write_text("x\n<!-- generated:status -->\nold\n<!-- /generated:status -->\n")
    assert reference.main(["--check", str(stale)]) == 1
    assert reference.main([str(stale)]) == 0
    assert reference.main(["--check", str(stale)]) == 0
    assert "`last_generation_s`" in stale.read_text()


def _known(address: str) -> bool:
    prefix = address.rstrip("/") + "/"
    if address.endswith("/") or any(r.is_pattern and r.prefix == prefix for r in ROUTES):
        return any(r.address.startswith(prefix) for r in ROUTES)  # a family, e.g. "/riff/set"
    address = address.replace("<name>", "alpha").replace("<param>", "alpha")
    if address in REPLIES or address in ERROR_SOURCES:
        return True
    try:
        resolve(address)
        return True
    except AddressError:
        return False


def _mentioned(path: Path) -> set[str]:
    if path.is_dir():
        return set()
    if path.suffix == ".tosc":  # TouchOSC: zlib-compressed XML
        import zlib

        text = zlib.decompress(path.read_bytes()).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    found = set(ADDRESS.findall(text))
    if path.suffix == ".pd":
        found |= {"/" + "/".join(m.split()) for m in re.findall(r"oscformat ([a-z_ ]+);", text)}
    return found


def test_every_address_in_docs_and_examples_is_served_or_sent() -> None:
    files = [CONTROL_MD, *sorted(EXAMPLES.iterdir())] + ([README] if README.is_file() else [])
    unknown = {f"{path.name}: {a}" for path in files for a in _mentioned(path) if not _known(a)}
    assert not unknown, unknown
    mentioned = set().union(*(_mentioned(p) for p in EXAMPLES.iterdir()))
    assert {"/riff/set/alpha", "/riff/listen/bar", "/riff/reply_port", "/riff/ping"} <= mentioned
    for route in ROUTES:
        for reply in re.findall(r"`(/riff/[a-z_/<>]+)", route.reply):
            assert _known(reply), reply


def test_examples_cover_every_tool() -> None:
    names = {p.name for p in EXAMPLES.iterdir()}
    assert {"osc_client.py", "supercollider.scd", "tidal.hs", "sonic_pi.rb", "riff.pd",
            "touchosc_layout.md", "DAW_ROUTING.md"} <= names
    routing = (EXAMPLES / "DAW_ROUTING.md").read_text()
    for daw in ("Ardour", "Bitwig", "Reaper", "Ableton Live", "PipeWire"):
        assert daw in routing


def test_pd_patch_connections_point_at_existing_objects() -> None:
    lines = [line for line in (EXAMPLES / "riff.pd").read_text().split(";\n") if line.strip()]
    objects = [line for line in lines if re.match(r"#X (obj|msg|text|floatatom)", line)]
    for line in lines:
        if line.startswith("#X connect"):
            source, _, sink, _ = map(int, line.split()[2:6])
            assert source < len(objects) and sink < len(objects), line


def _client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / "osc_client.py"), "--port", str(port),
                           "--wait", "0.3", *args], capture_output=True, text=True, timeout=30)


def test_python_example_client_talks_to_the_server(surfaces: Any) -> None:
    port = surfaces.osc.address[1]
    assert _client(port, "ping").stdout.split() == ["/riff/pong", "0.1.0"]
    assert _client(port, "set", "prompt_a", "deep house").returncode == 0
    assert _client(port, "get", "prompt_a").stdout.strip() == "/riff/get/prompt_a deep house"
    failed = _client(port, "set", "alpha", "loud")
    assert failed.returncode == 1 and "alpha: expected" in failed.stdout
    assert _client(port, "--at", "0.2", "set", "steps", "30").returncode == 0
    assert surfaces.store.snapshot().steps == 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_control_command_serves_and_logs_changes(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "bridge.cli", "control", "--osc-port", str(port),
                                "--midi", "none", "--presets-dir", str(tmp_path), "--preset", "techno"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peer = OscPeer(("127.0.0.1", port))
    try:
        for _ in range(100):
            peer.send("/riff/ping")
            try:
                peer.expect("/riff/pong", timeout=0.1)
                break
            except OSError:
                time.sleep(0.05)
        peer.send("/riff/set/alpha", 0.5)
        peer.send("/riff/get/bpm")
        assert peer.expect("/riff/get/bpm").args == (128.0,)
    finally:
        peer.close()
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert f"OSC  udp://127.0.0.1:{port}" in output and "alpha = 0.5" in output


def test_presets_command_lists_and_prints(tmp_path: Path) -> None:
    listing = subprocess.run([sys.executable, "-m", "bridge.cli", "presets", "--presets-dir", str(tmp_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
    assert "nanokontrol2" in listing.stdout and "factory" in listing.stdout
    shown = subprocess.run([sys.executable, "-m", "bridge.cli", "presets", "techno"],
                           cwd=REPO, capture_output=True, text=True, timeout=30)
    assert "bpm = 128.0" in shown.stdout
    bad = subprocess.run([sys.executable, "-m", "bridge.cli", "presets", "../etc/passwd"],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "name: expected" in bad.stderr


def test_control_modules_import_nothing_heavy() -> None:
    code = ("import sys, bridge.control.surfaces, bridge.control.reference, bridge.commands.control;"
            "print(sorted(m for m in ('torch', 'diffusers', 'rtmidi', 'jack') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
