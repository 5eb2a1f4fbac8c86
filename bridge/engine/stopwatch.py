"""Per-stage wall-clock timing of a generation (text encoder, UNet, VAE, codec...)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator


class Stopwatch:
    """Accumulates seconds per stage name; waits for ``device``'s CUDA work (that device's,
    not the current one's) so GPU stages are measured.

    Use ``with watch.stage("unet"): ...``; :attr:`seconds` maps stage to total seconds.
    """

    def __init__(self, device: Any = "cpu") -> None:
        self.seconds: dict[str, float] = {}
        self._cuda = str(device).startswith("cuda")
        self._device = device

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block and add it to ``name`` (also when it raises)."""
        self._sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def _sync(self) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize(self._device)
