"""The codec commands of the CLI, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

CLIP2 = "test_data/clips/clip_2_start_103694_ms_duration_5678_ms.wav"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_help_does_not_import_torch():
    probe = ("import sys; from bridge.cli import build_parser; build_parser(); "
             "import bridge.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
    for args in (["--help"], ["audio2image", "--help"], ["image2audio", "--help"]):
        run = subprocess.run([sys.executable, "-X", "importtime", "-m", "bridge.cli", *args],
                             capture_output=True, text=True)
        assert run.returncode == 0 and "torch" not in run.stderr, args


def test_audio2image_then_image2audio(shared_dir: Path, tmp_path: Path):
    png, wav = tmp_path / "clip.png", tmp_path / "clip.wav"
    assert cli("audio2image", str(shared_dir / CLIP2), str(png), "--stereo").returncode == 0
    image = Image.open(png)
    assert image.size == (568, 512) and image.getexif()[11005] == 1
    done = cli("image2audio", str(png), str(wav), "--iterations", "8", "--sample-rate", "48000")
    assert done.returncode == 0, done.stderr
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, round(567 * 441 * 48000 / 44100))


def test_outputs_are_never_overwritten_silently(tmp_path: Path):
    png = tmp_path / "x.png"
    Image.fromarray(np.full((512, 16, 3), 200, np.uint8)).save(png)
    out = tmp_path / "x.wav"
    out.write_bytes(b"precious")
    done = cli("image2audio", str(png), str(out))
    assert done.returncode == 2 and "already exists" in done.stderr
    assert out.read_bytes() == b"precious"
    assert cli("image2audio", str(png), str(out), "--force", "--iterations", "2").returncode == 0


def test_errors_are_one_line_naming_file_and_problem(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1)), 44100)
    narrow = tmp_path / "narrow.png"
    Image.new("RGB", (1, 512)).save(narrow)
    grey = tmp_path / "grey.png"
    Image.new("L", (32, 512)).save(grey)
    (tmp_path / "bad.png").write_text("nope")
    cases = [
        (("audio2image", str(tmp_path / "missing.wav"), str(tmp_path / "o.png")), "missing.wav: no such file"),
        (("audio2image", str(empty), str(tmp_path / "o.png")), "empty.wav: audio is empty"),
        (("image2audio", str(tmp_path / "bad.png"), str(tmp_path / "o.wav")), "bad.png: not a readable image"),
        (("image2audio", str(narrow), str(tmp_path / "o.wav")), "narrow.png: image: expected at least 2 px wide"),
        (("image2audio", str(grey), str(tmp_path / "o.wav"), "--stereo"), "grey.png: image mode: expected RGB"),
    ]
    for args, message in cases:
        done = cli(*args)
        assert done.returncode == 2, args
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
