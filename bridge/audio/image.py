"""Mel magnitude <-> Riffusion spectrogram image (8-bit, inverted, low frequencies at the bottom).

Encoding follows the reference converter exactly: divide by the maximum, ``** power``, times
255, inverted, truncated to uint8, flipped; mono is grey RGB, stereo is R=0, G=left, B=right;
the parameters (with the maximum) go into EXIF tags. Decoding accepts any image a person can
draw: RGB, grey, palette, RGBA (transparent reads as silence), 16-bit or float grey, of any
width of at least 2 px and any height (resized to the mel bin count).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bridge.audio.params import EXIF_TAGS, SpectrogramParams
from bridge.errors import InputFileError, ParameterError


def encode_image(mel: np.ndarray, params: SpectrogramParams) -> Image.Image:
    """Image of a ``(channels, n_mels, frames)`` non-negative mel magnitude.

    ``params.stereo`` must agree with the channel count; EXIF max_value is set from ``mel``.
    """
    if mel.ndim != 3 or mel.shape[0] != params.channels:
        raise ParameterError("mel", f"shape ({params.channels}, n_mels, frames)", mel.shape)
    peak = float(mel.max())
    scaled = mel / peak if peak > 0 else np.zeros_like(mel)
    data = (255 - np.power(scaled, params.power_for_image) * 255).astype(np.uint8)
    if params.stereo:
        rgb = np.stack([np.zeros_like(data[0]), data[0], data[1]], axis=-1)
    else:
        rgb = np.repeat(data[0][..., None], 3, axis=-1)
    image = Image.fromarray(np.ascontiguousarray(rgb[::-1]), mode="RGB")
    exif = image.getexif()
    exif.update(params.with_changes(max_value=peak if peak > 0 else 1.0).to_exif())
    return image


def image_params(image: Image.Image, stereo: bool | None = None) -> SpectrogramParams:
    """Parameters stored in ``image``'s EXIF (v1 defaults when absent); ``stereo`` overrides."""
    exif = {k: v for k, v in image.getexif().items() if k in EXIF_TAGS.values()}
    params = SpectrogramParams.from_exif(exif)
    return params if stereo is None else params.with_changes(stereo=stereo)


def decode_image(image: Image.Image, stereo: bool | None = None) -> tuple[np.ndarray, SpectrogramParams]:
    """``(channels, n_mels, width)`` float32 mel magnitude of ``image``, with its parameters.

    Brightness 255 is silence and 0 is ``max_value``. Mono images read the mean of R, G and B
    (R=G=B in spectrogram images); stereo reads G and B.
    """
    params = image_params(image, stereo)
    if params.stereo and image.mode not in ("RGB", "RGBA", "P"):
        raise ParameterError("image mode", "RGB, RGBA or palette for stereo (G=left, B=right)", image.mode)
    if image.width < 2 or image.height < 1:
        raise ParameterError("image", "at least 2 px wide and 1 px high", f"{image.width}x{image.height}")
    pixels = _as_rgb_float(image)
    if pixels.shape[0] != params.n_mels:
        pixels = _resize_height(pixels, params.n_mels)
    pixels = pixels[::-1]
    channels = pixels[..., 1:3] if params.stereo else pixels.mean(axis=-1, keepdims=True)
    level = (255.0 - channels.transpose(2, 0, 1)) / 255.0
    mel = np.power(np.clip(level, 0.0, 1.0), 1.0 / params.power_for_image) * params.max_value
    return mel.astype(np.float32), params


def _as_rgb_float(image: Image.Image) -> np.ndarray:
    """Image as ``(height, width, 3)`` float64 in 0..255; alpha composited over white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" and grey.max() > 255 else 255.0
        grey = grey * (255.0 / top)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:4] / 255.0
        return rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def _resize_height(pixels: np.ndarray, height: int) -> np.ndarray:
    """Bilinear resize of the frequency axis only (time resolution is kept)."""
    planes = [
        np.asarray(Image.fromarray(pixels[..., c].astype(np.float32), mode="F").resize(
            (pixels.shape[1], height), Image.Resampling.BILINEAR))
        for c in range(3)
    ]
    return np.stack(planes, axis=-1).astype(np.float64)


def load_image(path: str | Path) -> Image.Image:
    """Open an image file fully, or raise InputFileError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise InputFileError(path, f"not a readable image ({err})") from None

