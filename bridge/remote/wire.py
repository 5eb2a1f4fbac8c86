"""What travels between a DAW-side client and a generation worker, and how it is framed.

Both directions use one frame: a 4-byte big-endian header length, a UTF-8 JSON header, then
the binary parts the header lists (``"parts": [[name, length], ...]``) back to back. No
base64, no pickles: the worker parses JSON and image bytes only.

A call (client to worker) holds the request's fields, ``num_samples``, ``sample_rate`` and
``returns`` (``"image"``: the worker sends the spectrogram image and the client decodes it
on its CPU; ``"audio"``: the worker decodes too and sends the audio with the image). A seed
image or mask that is a file on the client travels as PNG bytes (parts ``seed`` and
``mask``; the request field then reads :data:`ATTACHED`); built-in names travel as names.
The worker refuses any other name: it never opens a path named by a request.

A reply (worker to client) holds ``timings``, ``replica`` (the replica's process id) and the
part ``image`` (PNG), plus ``audio`` (float32 little-endian mono, ``num_samples`` long) when
audio was asked for.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image

from bridge.engine.request import GenerationRequest
from bridge.engine.seeds import BUILTIN_SEEDS
from bridge.errors import BridgeError, ParameterError, check_choice, check_int

#: What a worker can send back.
RETURNS = ("image", "audio")
#: The request field value that stands for attached image bytes.
ATTACHED = "<attached>"
#: Largest frame either side accepts (a 16-bar seed image is well under this).
MAX_FRAME_BYTES = 64 * 1024 * 1024
SAMPLE_RATES = (44100, 48000)
_MASKS = ("keep-start", "keep-end", "keep-low", "keep-high")
_REQUEST_FIELDS = tuple(f.name for f in fields(GenerationRequest))


class WireError(BridgeError):
    """A frame that could not be read (truncated, not JSON, parts that do not add up)."""


def pack(header: dict[str, Any], parts: dict[str, bytes] | None = None) -> bytes:
    """One frame of ``header`` and the binary ``parts``."""
    parts = parts or {}
    head = dict(header, parts=[[name, len(data)] for name, data in parts.items()])
    text = json.dumps(head, separators=(",", ":")).encode()
    return struct.pack(">I", len(text)) + text + b"".join(parts.values())


def unpack(frame: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``(header, parts)`` of a frame; raises WireError when it does not parse."""
    if len(frame) < 4 or len(frame) > MAX_FRAME_BYTES:
        raise WireError(f"frame: expected 4 to {MAX_FRAME_BYTES} bytes, got {len(frame)}")
    (size,) = struct.unpack(">I", frame[:4])
    try:
        header = json.loads(frame[4:4 + size])
    except ValueError as err:
        raise WireError(f"frame header: expected JSON, got {err}") from None
    if not isinstance(header, dict):
        raise WireError("frame header: expected a JSON object")
    return header, _split_parts(header.get("parts", []), frame[4 + size:])


def _split_parts(listing: Any, body: bytes) -> dict[str, bytes]:
    parts, offset = {}, 0
    try:
        for name, length in listing:
            parts[str(name)] = body[offset:offset + int(length)]
            offset += int(length)
    except (TypeError, ValueError):
        raise WireError("frame parts: expected a list of [name, length]") from None
    if offset != len(body):
        raise WireError(f"frame parts: listed {offset} bytes, got {len(body)}")
    return parts


# -- images -------------------------------------------------------------------------------

def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG of ``image`` (its EXIF kept); an RGB image with R=G=B (a mono
    spectrogram) is stored as one grey channel, a third of the bytes."""
    exif = image.getexif()
    if image.mode == "RGB":
        pixels = np.asarray(image)
        if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
            image = Image.fromarray(np.ascontiguousarray(pixels[..., 0]), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


def rgb_image(data: bytes, name: str) -> Image.Image:
    """The RGB image of PNG ``data`` (grey expanded to R=G=B), its EXIF kept."""
    image = png_image(data, name)
    if image.mode == "RGB":
        return image
    exif = image.getexif()
    rgb = image.convert("RGB")
    rgb.getexif().update(exif)
    return rgb


def png_image(data: bytes, name: str) -> Image.Image:
    """The image in ``data``; ParameterError naming ``name`` when it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.copy()
    except Exception as err:
        raise ParameterError(name, "PNG image bytes", f"{len(data)} bytes ({err})") from None


def mask_png(mask: np.ndarray) -> bytes:
    """A ``(h, w)`` regenerate-weight mask as 8-bit grey PNG (exact for masks read from
    8-bit images, which is what a mask file is)."""
    grey = np.rint(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    return png_bytes(Image.fromarray(grey, mode="L"))


def mask_from_png(data: bytes) -> np.ndarray:
    """The float32 regenerate-weights of :func:`mask_png` bytes."""
    return np.asarray(png_image(data, "mask").convert("L"), dtype=np.float32) / 255.0


# -- calls --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One generation asked of a worker: the request, the length, what to send back, and
    the seed image / mask bytes when they are attached (see the module docstring)."""

    request: GenerationRequest
    num_samples: int
    sample_rate: int = 44100
    returns: str = "image"
    seed: bytes | None = None
    mask: bytes | None = None

    def __post_init__(self) -> None:
        check_int("num_samples", self.num_samples, 1, 16 * 48000 * 60)
        check_choice("sample_rate", self.sample_rate, SAMPLE_RATES)
        check_choice("returns", self.returns, RETURNS)
        check_names(self.request, self.seed is not None, self.mask is not None)

    def encode(self) -> bytes:
        """This call as one frame."""
        header = {"request": asdict(self.request), "num_samples": self.num_samples,
                  "sample_rate": self.sample_rate, "returns": self.returns}
        parts = {name: data for name, data in (("seed", self.seed), ("mask", self.mask)) if data is not None}
        return pack(header, parts)

    @classmethod
    def decode(cls, frame: bytes) -> "Call":
        """The call in ``frame``; ParameterError/WireError for anything the worker refuses."""
        header, parts = unpack(frame)
        fields_ = header.get("request")
        if not isinstance(fields_, dict) or set(fields_) - set(_REQUEST_FIELDS):
            raise ParameterError("request", f"an object with fields among {', '.join(_REQUEST_FIELDS)}",
                                 sorted(fields_) if isinstance(fields_, dict) else fields_)
        return cls(GenerationRequest(**fields_), header.get("num_samples"), header.get("sample_rate", 44100),
                   header.get("returns", "image"), parts.get("seed"), parts.get("mask"))

    def shape_key(self) -> tuple[Any, ...]:
        """Calls with equal keys can share one UNet batch: same canvas, schedule, guidance
        mode and kind of inputs."""
        from bridge.engine.canvas import canvas_width

        r = self.request
        has_seed = bool(r.seed_image)
        strength_steps = min(int(r.steps * r.denoising), r.steps) if has_seed else r.steps
        return (canvas_width(r.generation_width()), r.steps, r.scheduler, strength_steps,
                has_seed, bool(r.mask), r.guidance > 1.0)


def check_names(request: GenerationRequest, seed_attached: bool, mask_attached: bool) -> None:
    """Refuse a request whose seed image or mask names anything but a built-in or the
    attached bytes: the worker never opens a path (ParameterError naming the field)."""
    _check_name("seed_image", request.seed_image, BUILTIN_SEEDS, seed_attached)
    _check_name("mask", request.mask, _MASKS, mask_attached)


def _check_name(name: str, value: str | None, builtins: tuple[str, ...], attached: bool) -> None:
    allowed = (f"a built-in name ({', '.join(builtins)}) or {ATTACHED!r} with PNG bytes attached; "
               "the worker never opens files named by a request")
    if attached and value != ATTACHED:
        raise ParameterError(name, f"{ATTACHED!r} when image bytes are attached", value)
    if value == ATTACHED and not attached:
        raise ParameterError(name, "image bytes attached to the request", "none attached")
    if value and value != ATTACHED and value not in builtins:
        raise ParameterError(name, allowed, value)


# -- replies ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """A worker's answer: the spectrogram image, audio when asked for, timings, replica."""

    image: bytes
    audio: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    replica: int = 0

    def encode(self) -> bytes:
        """This reply as one frame."""
        parts = {"image": self.image}
        if self.audio is not None:
            parts["audio"] = np.ascontiguousarray(self.audio, dtype="<f4").tobytes()
        return pack({"timings": self.timings, "replica": self.replica}, parts)

    @classmethod
    def decode(cls, frame: bytes) -> "Reply":
        """The reply in ``frame`` (WireError when it does not parse)."""
        header, parts = unpack(frame)
        if "image" not in parts:
            raise WireError("reply: no image part")
        audio = np.frombuffer(parts["audio"], dtype="<f4").copy() if "audio" in parts else None
        timings = {str(k): float(v) for k, v in dict(header.get("timings", {})).items()}
        return cls(parts["image"], audio, timings, int(header.get("replica", 0)))
