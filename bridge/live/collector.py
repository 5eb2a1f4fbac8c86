"""Python's cyclic garbage collector, kept out of the realtime thread while the engine runs.

Automatic collection starts in whichever thread happens to allocate past the threshold, so
it can start inside the JACK process callback, and a collection that frees a clip's arrays
holds the GIL for milliseconds. While the live engine runs, automatic collection is off and
the monitor thread collects instead, on the same thresholds Python uses. Objects alive at
start (modules, the model's handles) are frozen out of every collection, so a full
collection only walks what the session made since.
"""

from __future__ import annotations

import gc


class GarbageCollector:
    """Collection on the monitor thread: ``suspend`` at start, ``collect`` each poll, ``resume``."""

    def __init__(self) -> None:
        self._was_enabled = gc.isenabled()

    def suspend(self) -> None:
        """Collect once, freeze what is alive, and turn automatic collection off."""
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()

    def collect(self) -> int:
        """The collection automatic GC would run now (the generation, or -1 when none is due)."""
        limit0, limit1, limit2 = gc.get_threshold()
        count0, count1, count2 = gc.get_count()
        if limit0 <= 0 or count0 < limit0:
            return -1
        generation = 2 if count1 >= limit1 and count2 >= limit2 else 1 if count1 >= limit1 else 0
        gc.collect(generation)
        return generation

    def resume(self) -> None:
        """Automatic collection back as it was before :meth:`suspend` (frozen objects stay frozen)."""
        if self._was_enabled:
            gc.enable()
