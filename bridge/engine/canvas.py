"""The diffusion canvas: clip widths rounded up to a few fixed sizes, cropped back after.

A clip's image is as wide as its bars at its tempo (a multiple of 8 px), so a live session
that moves through tempos and loop lengths asks the model for a new tensor shape almost every
clip. On CPU every new shape leaves allocator and kernel-cache state behind: resident memory
of the model process crept up all session (``bench/soak.py``), while a session cycling
through a few widths stays flat. The model therefore paints on a canvas whose width is the
clip's rounded up to a multiple of :data:`CANVAS_STEP` (64 px: every UNet level's latent
width is then whole), and the clip is the canvas's first ``width`` columns.

The columns past the clip are its loop's continuation: a seed image and a mask are padded by
wrapping their first columns around, so a drum grid keeps its beat across the edge and the
cropped clip sees the same context on both sides of its end as a looped clip would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Canvas widths are multiples of this many pixels (8 latent columns).
CANVAS_STEP = 64


def canvas_width(width: int) -> int:
    """The canvas for a clip ``width`` px wide: ``width`` rounded up to a multiple of CANVAS_STEP."""
    return -(-width // CANVAS_STEP) * CANVAS_STEP


@dataclass(frozen=True)
class Canvas:
    """A clip ``width`` px wide painted on a canvas ``canvas_width(width)`` px wide."""

    width: int

    @property
    def full_width(self) -> int:
        """The canvas width the model generates at."""
        return canvas_width(self.width)

    @property
    def extra(self) -> int:
        """Columns past the clip's end (0 when the clip fills the canvas)."""
        return self.full_width - self.width

    def pad_image(self, image: Image.Image | None) -> Image.Image | None:
        """``image`` (``width`` wide) with its first columns wrapped on to fill the canvas."""
        if image is None or not self.extra:
            return image
        return Image.fromarray(self._wrap(np.asarray(image)))

    def pad_mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        """A ``(height, width)`` mask wrapped on like :meth:`pad_image`."""
        if mask is None or not self.extra:
            return mask
        return np.ascontiguousarray(self._wrap(mask))

    def crop(self, image: Image.Image) -> Image.Image:
        """The clip: the canvas image's first ``width`` columns (EXIF kept)."""
        if image.width == self.width:
            return image
        exif = image.getexif()
        clip = image.crop((0, 0, self.width, image.height))
        clip.getexif().update(exif)
        return clip

    def _wrap(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.shape[1] != self.width:
            raise ValueError(f"canvas: expected an image {self.width} px wide, got {pixels.shape[1]}")
        columns = np.arange(self.full_width) % self.width
        return pixels[:, columns]
