"""Clip spectrograms for the page: a small greyscale PNG (data URL) of a clip's image."""

from __future__ import annotations

import base64
import io
from typing import Any

#: Height of a thumbnail in pixels (the image is 512 mel bins high).
HEIGHT = 128


def thumbnail(image: Any, height: int = HEIGHT) -> str | None:
    """``data:image/png;base64,...`` of ``image`` (a PIL image) scaled to ``height`` rows,
    its width halved; None when there is no image. Loud is dark, as in the Riffusion format."""
    if image is None or not hasattr(image, "resize"):
        return None
    width = max(1, image.width // 2)
    small = image.convert("L").resize((width, height))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
