"""Reading and writing audio files (soundfile), with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.errors import InputFileError


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """``(frames, channels)`` float32 samples in [-1, 1] and the file's sample rate.

    Raises InputFileError for missing, unreadable or empty files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise InputFileError(path, f"not a readable audio file ({err})") from None
    if data.shape[0] == 0:
        raise InputFileError(path, "audio is empty (0 samples)")
    return data, int(rate)


def write_audio(
    path: str | Path, audio: np.ndarray, sample_rate: int, *, overwrite: bool = False,
    comment: str | None = None,
) -> Path:
    """Write ``(frames, channels)`` or ``(frames,)`` float audio as 24-bit WAV.

    Refuses to replace an existing file unless ``overwrite`` is set. ``comment`` goes into
    the WAV's INFO comment (tempo and bars of recordings, for instance).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputFileError(path, "already exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", samplerate=sample_rate,
                      channels=1 if audio.ndim == 1 else audio.shape[1], subtype="PCM_24",
                      format="WAV") as handle:
        if comment:
            handle.comment = comment
        handle.write(np.clip(audio, -1.0, 1.0))
    return path
