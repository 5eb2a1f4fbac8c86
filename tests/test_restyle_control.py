"""Restyle controls over real surfaces: the source parameter, /riff/input/capture over UDP OSC,
the MIDI capture action, the restyle preset; and ``riff-bridge restyle`` on a 16-bar song."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import mido
import numpy as np
import pytest
from control_fixtures import OscPeer

from bridge.control.surfaces import ControlSurfaces
from bridge.live.inputcapture import InputCapture, SeedFolder
from bridge.live.inputloop import BarLine, InputBlock, InputRecorder
from bridge.state import ControlState, StateStore

REPO = Path(__file__).resolve().parent.parent
BAR = 88200  # frames per bar at 120 BPM


def _recorder(bars: int = 3, level: float = 0.3) -> InputRecorder:
    """Input of ``bars`` bars of a 4-per-bar click pattern, with their bar lines."""
    recorder = InputRecorder(44100, seconds=20)
    t = np.arange(bars * BAR + 256)
    audio = (level * np.sin(t * 0.05) * np.exp(-(t % 22050) / 2000.0)).astype(np.float32)
    for start in range(0, len(t), 256):
        lines = [BarLine(b * BAR, b * BAR, b, float(BAR), "own") for b in range(bars + 1) if start <= b * BAR < start + 256]
        recorder.feed([InputBlock(start, np.stack([audio[start:start + 256]] * 2, axis=1))], lines)
    return recorder


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[tuple[ControlSurfaces, OscPeer, Path]]:
    store = StateStore(ControlState(bars=1))
    surfaces = ControlSurfaces(store, osc_host="127.0.0.1", osc_port=0, presets=None)
    seeds = tmp_path / "seeds"
    surfaces.actions.capture = InputCapture(_recorder(), store, SeedFolder(seeds), lambda: 3,
                                            select=lambda path: surfaces.actions.set("seed_image", path)).capture
    surfaces.start()
    try:
        yield surfaces, OscPeer(surfaces.osc.address), seeds
    finally:
        surfaces.stop()


def test_source_is_a_parameter_like_every_other(rig: Any) -> None:
    surfaces, peer, _ = rig
    peer.send("/riff/set/source", "input")
    peer.send("/riff/get/source")
    assert peer.expect("/riff/get/source").args == ("input",)
    peer.send("/riff/set/source", "microphone")
    error = peer.expect("/riff/error")
    assert error.args[0] == "/riff/set/source" and "one of prompt, input" in error.args[1]
    assert surfaces.store.snapshot().source == "input"


def test_capture_over_osc_names_the_file_and_never_replaces(rig: Any) -> None:
    surfaces, peer, seeds = rig
    peer.send("/riff/input/capture", "groove")
    reply = peer.expect("/riff/input/captured", timeout=30)
    path = Path(reply.args[0])
    assert path == (seeds / "groove.png").resolve() and path.is_file()
    peer.send("/riff/get/seed_image")
    assert peer.expect("/riff/get/seed_image").args == (str(path),)
    before = path.read_bytes()
    peer.send("/riff/input/capture", "groove")
    assert "never replaced" in peer.expect("/riff/error", timeout=30).args[1]
    peer.send("/riff/input/capture", "../../outside")
    assert "name: expected 1-64" in peer.expect("/riff/error").args[1]
    assert path.read_bytes() == before and sorted(p.name for p in seeds.iterdir()) == ["groove.png"]
    peer.send("/riff/input/capture")
    auto = Path(peer.expect("/riff/input/captured", timeout=30).args[0])
    assert auto.parent == path.parent and auto.name.startswith("input-")


def test_capture_without_audio_input_is_an_error(rig: Any) -> None:
    surfaces, peer, _ = rig
    surfaces.actions.capture = None
    peer.send("/riff/input/capture")
    assert "--audio-in" in peer.expect("/riff/error").args[1]


def test_a_midi_pad_captures(rig: Any) -> None:
    from bridge.control.midi_map import ControllerMap, TriggerBinding

    surfaces, _, seeds = rig
    surfaces.actions.use_controller(ControllerMap(triggers=(TriggerBinding("note", 40, action="capture"),)))
    surfaces.feed_message(mido.Message("note_on", note=40, velocity=100))
    files = list(seeds.iterdir())
    assert len(files) == 1 and surfaces.store.snapshot().seed_image == str(files[0].resolve())


def test_the_restyle_preset_selects_the_input_source(tmp_path: Path) -> None:
    from bridge.control.presets import PresetStore

    preset = PresetStore(tmp_path).load("restyle")
    assert preset.parameters["source"] == "input" and 0 < preset.parameters["denoising"] < 1


def test_restyle_command_keeps_a_16_bar_song_exactly_and_every_chunk_on_its_bar(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    from bridge.audio import song
    from bridge.audio.onsets import onset_offsets
    from bridge.audio.wav import read_audio

    source = song.render(song.compose_drums(120.0, 17, "syncopated"), tmp_path / "drums.wav")
    audio, rate = read_audio(source)
    cut = tmp_path / "in.wav"
    from bridge.audio.wav import write_audio

    frames = 16 * BAR + 12345  # 16 bars and a bit: the last chunk is short
    write_audio(cut, audio[:frames], rate)
    out = tmp_path / "out.wav"
    result = subprocess.run([sys.executable, "-m", "bridge.cli", "restyle", str(cut), str(out), "--prompt", "jazz",
                             "--bpm", "120", "--bars", "4", "--denoising", "0", "--steps", "2",
                             "--model", str(tiny_model_dir), "--device", "cpu"],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    restyled, out_rate = read_audio(out)
    assert out_rate == rate and restyled.shape == (frames, 2)
    starts = [int(line.split("frames ")[1].split("-")[0]) for line in result.stderr.splitlines() if "chunk " in line]
    assert starts == [k * 4 * BAR for k in range(5)]
    worst = []
    for start in starts[:4]:  # each chunk's hits land on its own bars (denoising 0 keeps them)
        offsets = onset_offsets(audio[start:start + 4 * BAR], restyled[start:start + 4 * BAR])
        assert len(offsets) >= 12
        worst.append(float(np.abs(offsets).max()))
    print("restyle 16 bars: chunk starts", starts, "max |onset offset| per chunk (ms)", [round(w * 1000, 1) for w in worst])
    assert max(worst) <= 0.010
    second = subprocess.run([sys.executable, "-m", "bridge.cli", "restyle", str(cut), str(out), "--prompt", "x",
                             "--bpm", "120", "--bars", "4"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert second.returncode == 2 and "already exists" in second.stderr
