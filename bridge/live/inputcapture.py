"""Freezing the live input as a seed image: ``/riff/input/capture [name]`` and the MIDI action.

:meth:`InputCapture.capture` takes the last completed input loop (the ``bars`` bars before
the current loop boundary, as the ``input`` source would restyle), writes it as a Riffusion
spectrogram PNG (mono mix, EXIF tags 11000-11080, the capture's tempo and bars in a text
chunk) into the user's seeds folder, and selects it as ``seed_image``, so a ``prompt``
source then streams variations around the captured groove.

The seeds folder is ``--seeds-dir`` (default ``$XDG_CONFIG_HOME/riff-bridge/seeds`` or
``~/.config/riff-bridge/seeds``). Names come from the network, so they follow the preset
name rules (1-64 of ``A-Z a-z 0-9 _ - .``, no leading dot, no ``..``, no separators; a
trailing ``.png`` is optional) and the resolved file must lie directly inside the folder.
A file is never replaced: an explicit name that exists is an error; without a name the
capture is called ``input-YYYYMMDD-HHMMSS`` (with ``-2``, ``-3``... when taken). Files are
written to a temporary name and linked into place, which fails rather than overwrites.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bridge.control.presets import check_name, contained_path
from bridge.errors import BridgeError, ParameterError
from bridge.live.inputloop import InputLoop, InputRecorder, InputUnavailable
from bridge.live.inputselector import SILENCE_DB
from bridge.state import StateStore

SUFFIX = ".png"


def default_seeds_dir() -> Path:
    """``$XDG_CONFIG_HOME/riff-bridge/seeds`` (``~/.config`` when the variable is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "riff-bridge" / "seeds"


class SeedFolder:
    """The user's seeds folder: safe names, exclusive writes (see the module docstring)."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else default_seeds_dir()

    def path_for(self, name: str) -> Path:
        """``folder/NAME.png`` for a valid ``name`` (ParameterError otherwise)."""
        if isinstance(name, str) and name.lower().endswith(SUFFIX):
            name = name[: -len(SUFFIX)]
        return contained_path(self.folder, check_name(name), SUFFIX)

    def save(self, image: Any, name: str | None, text: str = "") -> Path:
        """Write ``image`` (a PIL image with EXIF) as a new PNG; returns the file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if name is not None:
            path = self.path_for(name)
            if not self._install(image, path, text):
                raise ParameterError("name", "a name not yet used in the seeds folder "
                                             f"({self.folder}); existing seeds are never replaced", name)
            return path
        stem = time.strftime("input-%Y%m%d-%H%M%S")
        for number in range(1, 1000):
            path = self.path_for(stem if number == 1 else f"{stem}-{number}")
            if self._install(image, path, text):
                return path
        raise BridgeError(f"seeds folder {self.folder}: no free name for {stem}")

    def _install(self, image: Any, path: Path, text: str) -> bool:
        """Write to a temporary file, then link it to ``path``; False when ``path`` exists."""
        from PIL import PngImagePlugin

        meta = PngImagePlugin.PngInfo()
        if text:
            meta.add_text("riff-bridge", text)
        handle, temp = tempfile.mkstemp(prefix=".capture-", suffix=SUFFIX, dir=path.parent)
        os.close(handle)
        try:
            image.save(temp, format="PNG", pnginfo=meta, exif=image.getexif())
            os.link(temp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temp)


class InputCapture:
    """Captures the last completed input loop into a :class:`SeedFolder` and selects it.

    ``boundary()`` gives the current loop boundary (the bar the playing loop started on;
    None: the newest bar line); ``select(path)`` makes the file the ``seed_image`` (default:
    set it on ``store`` directly).
    """

    def __init__(self, recorder: InputRecorder, store: StateStore, folder: SeedFolder,
                 boundary: Callable[[], int | None] = lambda: None,
                 select: Callable[[str], Any] | None = None, threshold_db: float = SILENCE_DB) -> None:
        self.recorder, self.store, self.folder, self.boundary = recorder, store, folder, boundary
        self.select = select or (lambda path: store.set("seed_image", path))
        self.threshold_db = threshold_db

    def capture(self, name: str | None = None) -> Path:
        """Freeze the last completed input loop; returns the new file (BridgeError when there
        is no complete loop, it is silent, or the name is invalid or taken)."""
        if name is not None:
            self.folder.path_for(name)  # a bad name fails before any work
        loop = self._last_loop()
        level = loop.rms_db()
        if level < self.threshold_db:
            raise BridgeError(f"input capture: the last input loop is silent ({level:.1f} dBFS, below "
                              f"{self.threshold_db:g} dBFS); nothing captured")
        path = self.folder.save(self._image(loop), name, json.dumps(self._info(loop), sort_keys=True))
        self.select(str(path))
        return path

    def _last_loop(self) -> InputLoop:
        bars = self.store.snapshot().bars
        end = self.boundary()
        if end is None:
            line = self.recorder.latest_bar()
            if line is None:
                raise BridgeError("input capture: no input loop yet (no bar line; is the transport rolling?)")
            end = int(line.bar)
        try:
            return self.recorder.loop(end, bars)
        except InputUnavailable as err:
            raise BridgeError(f"input capture: {err}") from None

    @staticmethod
    def _image(loop: InputLoop) -> Any:
        from bridge.audio.codec import SpectrogramCodec

        return SpectrogramCodec().audio_to_image(loop.mono(), loop.sample_rate)

    def _info(self, loop: InputLoop) -> dict[str, Any]:
        return {"source": "input", "bars": loop.bars, "start_bar": loop.start_bar,
                "seconds": round(loop.frames / loop.sample_rate, 6), "sample_rate": loop.sample_rate}
