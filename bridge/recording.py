"""Things a user keeps (recordings, renders): never overwritten, never lost.

:func:`next_free_path` picks a name that does not exist yet; :class:`ClipRecorder` saves every
played clip (WAV + spectrogram PNG, tempo and bars in their metadata) on its own thread.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def next_free_path(path: str | Path) -> Path:
    """``path`` if nothing is there, else ``stem-2.ext``, ``stem-3.ext``... (first free one)."""
    path = Path(path)
    if not path.exists():
        return path
    counter = 2
    while (candidate := path.with_name(f"{path.stem}-{counter}{path.suffix}")).exists():
        counter += 1
    return candidate


def reserve(path: Path) -> Path:
    """Create ``path`` (or the next free name) exclusively, so no other writer can take it."""
    while True:
        candidate = next_free_path(path)
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return candidate
        except FileExistsError:
            continue


class ClipRecorder:
    """Saves clips to ``folder`` as ``<session>-NNNN.wav`` + ``.png`` + ``.json`` without blocking.

    ``record(audio, sample_rate, image, info)`` queues one clip (``audio`` ``(channels,
    frames)``); a writer thread names files with :func:`reserve` (never overwrites). ``info``
    (tempo, bars, prompt...) goes into the WAV comment, the PNG text chunk and the JSON.
    ``close()`` writes what is queued, then stops.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.saved: list[Path] = []
        self.session = time.strftime("%Y%m%d-%H%M%S")
        self._count = 0
        self._queue: "queue.Queue[tuple[Any, ...] | None]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="riff-bridge-recorder", daemon=True)
        self._thread.start()

    def record(self, audio: np.ndarray, sample_rate: int, image: Any, info: dict[str, Any]) -> None:
        """Queue one clip for saving (any thread)."""
        self._queue.put((np.array(audio, copy=True), sample_rate, image, dict(info)))

    def close(self, timeout: float = 10.0) -> None:
        """Finish writing queued clips (up to ``timeout`` s) and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item)
            except Exception:  # a full disk must not stop the show
                log.exception("could not save a recorded clip in %s", self.folder)

    def _write(self, audio: np.ndarray, sample_rate: int, image: Any, info: dict[str, Any]) -> None:
        from bridge.audio.wav import write_audio

        self._count += 1
        wav = reserve(self.folder / f"{self.session}-{self._count:04d}.wav")
        text = json.dumps(info, sort_keys=True, default=str)
        write_audio(wav, audio.T, sample_rate, overwrite=True, comment=text)
        self.saved.append(wav)
        if image is not None:
            self._write_image(image, reserve(wav.with_suffix(".png")), text)
        reserve(wav.with_suffix(".json")).write_text(text + "\n", encoding="utf-8")

    @staticmethod
    def _write_image(image: Any, path: Path, text: str) -> None:
        from PIL import PngImagePlugin

        meta = PngImagePlugin.PngInfo()
        meta.add_text("riff-bridge", text)
        image.save(path, format="PNG", pnginfo=meta, exif=image.getexif())
