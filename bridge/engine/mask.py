"""Inpainting masks: white is regenerated, black is kept (the reference convention).

A mask is a built-in name or an image file; either way it comes back as a float32
``(height, width)`` array in [0, 1] where 1 means regenerate. Built-ins (image rows run from
high frequencies at the top to low at the bottom):
  - ``keep-start`` / ``keep-end``: keep the first / last quarter of the clip in time;
  - ``keep-low``: keep the lowest quarter of the image (below about 700 Hz: bass, kick);
  - ``keep-high``: keep everything above that band (regenerate only the lows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bridge.audio.image import load_image
from bridge.engine.seeds import existing_file
from bridge.errors import ParameterError

BUILTIN_MASKS = ("keep-start", "keep-end", "keep-low", "keep-high")
#: Fraction of the time or frequency axis that the built-in masks keep.
KEEP_FRACTION = 0.25
_ALLOWED = "a built-in name (" + ", ".join(BUILTIN_MASKS) + ") or an image file"


def mask_array(source: str, width: int, height: int) -> np.ndarray:
    """``(height, width)`` float32 regenerate-weights of ``source`` (1 = regenerate).

    Raises ParameterError for an unknown name, InputFileError for a missing or unreadable file.
    """
    path = check_mask_source(source)
    if path is None:
        return builtin_mask(source, width, height)
    grey = load_image(path).convert("L").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float32) / 255.0


def check_mask_source(source: str) -> Path | None:
    """None for a built-in name, the file for an existing path; else InputFileError (for
    what looks like a path) or ParameterError (an unknown name)."""
    if source in BUILTIN_MASKS:
        return None
    return existing_file(source, "mask", _ALLOWED)


def builtin_mask(name: str, width: int, height: int) -> np.ndarray:
    """The built-in mask ``name`` at ``width`` x ``height`` (see the module doc)."""
    mask = np.ones((height, width), dtype=np.float32)
    columns, rows = round(width * KEEP_FRACTION), round(height * KEEP_FRACTION)
    if name == "keep-start":
        mask[:, :columns] = 0.0
    elif name == "keep-end":
        mask[:, width - columns:] = 0.0
    elif name == "keep-low":
        mask[height - rows:, :] = 0.0
    elif name == "keep-high":
        mask[: height - rows, :] = 0.0
    else:
        raise ParameterError("mask", "one of " + ", ".join(BUILTIN_MASKS), name)
    return mask
