"""The seam between the live engine and whatever makes clips (diffusion model or fake)."""

from __future__ import annotations

from typing import Callable, Protocol

from bridge.engine.clip import Clip
from bridge.errors import BridgeError

#: Polled between denoising steps; returning True abandons the clip.
CancelCheck = Callable[[], bool]


class GenerationCancelled(BridgeError):
    """Raised by an engine when its cancel check asked it to stop."""


class NonFiniteError(BridgeError):
    """A generation whose latents or image are not finite (NaN or Inf): a failed clip, never
    decoded to audio (a black or NaN image would play as loud noise)."""


class Engine(Protocol):
    """Makes clips. Implementations: ``bridge.engine.fake.FakeEngine`` and the diffusion engine."""

    def generate(self, request: object, num_samples: int, sample_rate: int,
                 cancel: CancelCheck | None = None) -> Clip:
        """A clip of exactly ``num_samples`` frames at ``sample_rate`` for ``request``.

        Raises GenerationCancelled when ``cancel()`` turns true, ParameterError for bad
        requests; must be safe to call from one worker thread at a time.
        """
        ...
