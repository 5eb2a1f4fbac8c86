"""A frozen, self-validating generation request (what to make, not how)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bridge.errors import ParameterError, check_int, check_range
from bridge.state import SEED_MAX, ControlState
from bridge.timing import Meter, Tempo

if TYPE_CHECKING:
    from bridge.engine.seedaudio import SeedAudio

SCHEDULERS = ("dpm", "ddim", "pndm", "euler", "lms")
#: One pixel column is one hop: 10 ms at 44.1 kHz.
HOP_SECONDS = 0.01
MIN_WIDTH, MAX_WIDTH = 64, 2048


@dataclass(frozen=True)
class GenerationRequest:
    """Everything that decides a clip.

    Length: either ``width`` pixels (multiple of 8) or ``bars`` at ``bpm`` (then the clip is
    generated near that width and fitted to exactly that many bars). ``seed_image`` is a
    built-in name, an image file or an audio file (None: plain text-to-image); ``mask`` a
    built-in name or image file (white regenerated, black kept). ``seed_audio`` (a
    :class:`~bridge.engine.seedaudio.SeedAudio`, e.g. the live input loop) is a seed that
    takes the place of ``seed_image``: its whole length is fitted to the clip's width.
    """

    prompt_a: str = "funky synth solo"
    prompt_b: str | None = None
    seed_a: int = 42
    seed_b: int | None = None
    alpha: float = 0.0
    negative: str = ""
    guidance: float = 7.0
    denoising: float = 0.75
    steps: int = 50
    scheduler: str = "dpm"
    seed_image: str | None = None
    mask: str | None = None
    width: int | None = None
    bars: float | None = None
    bpm: float | None = None
    beats_per_bar: int = 4
    seed_audio: "SeedAudio | None" = None

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, 0.0, 1.0)
        check_range("guidance", self.guidance, 0.0, 30.0)
        check_range("denoising", self.denoising, 0.0, 1.0)
        check_int("steps", self.steps, 1, 150)
        check_int("seed_a", self.seed_a, 0, SEED_MAX)
        if self.seed_b is not None:
            check_int("seed_b", self.seed_b, 0, SEED_MAX)
        if self.scheduler not in SCHEDULERS:
            raise ParameterError("scheduler", "one of " + ", ".join(SCHEDULERS), self.scheduler)
        if not isinstance(self.prompt_a, str) or not self.prompt_a.strip():
            raise ParameterError("prompt_a", "a non-empty string", self.prompt_a)
        if self.mask and not (self.seed_image or self.seed_audio is not None):
            raise ParameterError("mask", "a seed image to inpaint into (set seed_image too)", self.mask)
        self._check_length()

    def _check_length(self) -> None:
        if self.width is not None:
            if self.bars is not None:
                raise ParameterError("width", "either width or bars, not both", self.width)
            if not isinstance(self.width, int) or self.width % 8 or not MIN_WIDTH <= self.width <= MAX_WIDTH:
                raise ParameterError("width", f"a multiple of 8 in [{MIN_WIDTH}, {MAX_WIDTH}]", self.width)
        if self.bars is not None:
            check_range("bars", self.bars, 0.25, 16)
            if self.bpm is None:
                raise ParameterError("bpm", "a tempo when bars is given", None)
            Tempo(self.bpm, Meter(self.beats_per_bar))

    @property
    def target_b(self) -> tuple[str, int]:
        """Prompt and seed of endpoint B (defaulting to A's)."""
        return (self.prompt_b if self.prompt_b is not None else self.prompt_a,
                self.seed_b if self.seed_b is not None else self.seed_a)

    def num_samples(self, sample_rate: int = 44100) -> int:
        """Exact output length in frames at ``sample_rate``."""
        if self.bars is not None:
            return Tempo(float(self.bpm), Meter(self.beats_per_bar)).bars_to_frames(self.bars, sample_rate)
        return round((self.generation_width() - 1) * HOP_SECONDS * sample_rate)

    def generation_width(self) -> int:
        """Image width to generate: ``width``, or the multiple of 8 nearest the bar length."""
        if self.width is not None:
            return self.width
        if self.bars is None:
            return 512
        seconds = Tempo(float(self.bpm), Meter(self.beats_per_bar)).bar_seconds() * self.bars
        pixels = round((seconds / HOP_SECONDS + 1) / 8) * 8
        return max(MIN_WIDTH, min(MAX_WIDTH, pixels))

    def with_changes(self, **changes: Any) -> "GenerationRequest":
        """A validated copy with some fields replaced."""
        return replace(self, **changes)

    @classmethod
    def from_state(cls, state: ControlState, bpm: float, beats_per_bar: int = 4,
                   seed_image: str | None = None, mask: str | None = None) -> "GenerationRequest":
        """The request a live control snapshot stands for, at the tempo in force."""
        return cls(
            prompt_a=state.prompt_a, prompt_b=state.prompt_b, seed_a=state.seed_a,
            seed_b=state.seed_b, alpha=state.alpha, negative=state.negative,
            guidance=state.guidance, denoising=state.denoising, steps=state.steps,
            seed_image=seed_image, mask=mask, bars=state.bars, bpm=bpm,
            beats_per_bar=beats_per_bar,
        )
