"""Spectrogram parameters of the Riffusion v1 image format, validated and EXIF-serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from bridge.errors import ParameterError, check_int, check_range

#: EXIF tag numbers used by the reference converter (riffusion ``SpectrogramParams.ExifTags``).
EXIF_TAGS: dict[str, int] = {
    "sample_rate": 11000,
    "stereo": 11005,
    "step_ms": 11010,
    "window_ms": 11020,
    "padded_ms": 11030,
    "n_mels": 11040,
    "min_frequency": 11050,
    "max_frequency": 11060,
    "power_for_image": 11070,
    "max_value": 11080,
}

#: Nominal amplitude that image brightness 0 (black) decodes to when no EXIF says otherwise.
DEFAULT_MAX_VALUE = 30e6


@dataclass(frozen=True)
class SpectrogramParams:
    """How audio maps to a spectrogram image; defaults are Riffusion v1 (GUIDE.md section 1).

    Derived sizes (``hop_length``, ``win_length``, ``n_fft``) are whole samples at
    ``sample_rate``; construction fails with ParameterError on values no image could hold.
    """

    sample_rate: int = 44100
    stereo: bool = False
    step_ms: int = 10
    window_ms: int = 100
    padded_ms: int = 400
    n_mels: int = 512
    min_frequency: float = 0.0
    max_frequency: float = 10000.0
    power_for_image: float = 0.25
    max_value: float = DEFAULT_MAX_VALUE

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, 8000, 192000)
        check_int("step_ms", self.step_ms, 1, 1000)
        check_int("window_ms", self.window_ms, 1, 4000)
        check_int("padded_ms", self.padded_ms, self.window_ms, 8000)
        check_int("n_mels", self.n_mels, 8, 4096)
        check_range("max_frequency", self.max_frequency, 1.0, self.sample_rate / 2)
        check_range("min_frequency", self.min_frequency, 0.0, self.max_frequency - 1.0)
        check_range("power_for_image", self.power_for_image, 0.01, 4.0)
        if not self.max_value > 0:
            raise ParameterError("max_value", "a positive number", self.max_value)

    @property
    def hop_length(self) -> int:
        """Samples between frames (441 in v1)."""
        return int(self.step_ms / 1000.0 * self.sample_rate)

    @property
    def win_length(self) -> int:
        """Hann window length in samples (4410 in v1)."""
        return int(self.window_ms / 1000.0 * self.sample_rate)

    @property
    def n_fft(self) -> int:
        """Zero-padded FFT size (17640 in v1)."""
        return int(self.padded_ms / 1000.0 * self.sample_rate)

    @property
    def channels(self) -> int:
        """Audio channels the image holds: 2 when stereo, else 1."""
        return 2 if self.stereo else 1

    def samples_for_width(self, width: int) -> int:
        """Audio samples that an image ``width`` pixels wide stands for: (W - 1) * hop."""
        return (width - 1) * self.hop_length

    def width_for_samples(self, samples: int) -> int:
        """Image width (frames) of a centred STFT over ``samples`` samples."""
        return samples // self.hop_length + 1

    def with_changes(self, **changes: Any) -> "SpectrogramParams":
        """A validated copy with some fields replaced."""
        return replace(self, **changes)

    def to_exif(self) -> dict[int, Any]:
        """EXIF tag -> value mapping, as the reference converter writes it."""
        values = asdict(self)
        values["stereo"] = int(self.stereo)
        return {tag: values[name] for name, tag in EXIF_TAGS.items()}

    @classmethod
    def from_exif(cls, exif: Mapping[int, Any]) -> "SpectrogramParams":
        """Parameters from an image's EXIF tags; tags that are absent keep their v1 defaults."""
        fields: dict[str, Any] = {}
        for name, tag in EXIF_TAGS.items():
            if tag in exif:
                fields[name] = exif[tag]
        if "stereo" in fields:
            fields["stereo"] = bool(fields["stereo"])
        for name in ("sample_rate", "step_ms", "window_ms", "padded_ms", "n_mels"):
            if name in fields:
                fields[name] = int(fields[name])
        for name in ("min_frequency", "max_frequency", "power_for_image", "max_value"):
            if name in fields:
                fields[name] = float(fields[name])
        return cls(**fields)
