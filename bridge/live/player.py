"""The handover between the generation worker and the core's loop player.

The block logic itself (which loop plays, bar lines, crossfades, late clips) runs in the
native core (``core.c``). :class:`Player` is its Python face for the worker: the worker
replaces :attr:`Player.offer` (an immutable :class:`Offer`), and the player turns each change
into core commands; :attr:`Player.current` is the loop the core is playing now (as of its
last block).

Rules the core applies, per bar line (see ``core.c``): at a loop boundary it starts
``offer.next`` if it is a new clip, else repeats the current loop (late when ``busy``);
inside a loop it takes a refit of the current clip (same serial, higher version) and keeps
every bar on its line.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.live.core import Core
from bridge.live.loop import Loop


@dataclass(frozen=True)
class Offer:
    """What the worker offers the player: ``next`` clip for the next loop boundary, a
    ``refit`` of the playing clip (same serial, higher version), and whether it is ``busy``
    making a newer clip (a boundary with no new clip is then late)."""

    next: Loop | None = None
    refit: Loop | None = None
    busy: bool = False


class Player:
    """The worker's view of the core's player (see the module docstring).

    Writers of :attr:`offer` must not race each other (the worker serialises them);
    every reader may read :attr:`current` and the counters from any thread.
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self._offer = Offer()

    @property
    def offer(self) -> Offer:
        """What was last offered."""
        return self._offer

    @offer.setter
    def offer(self, offer: Offer) -> None:
        old, self._offer = self._offer, offer
        if offer.next is not old.next:
            self.core.send("NEXT", offer.next)
        if offer.refit is not old.refit:
            self.core.send("REFIT", offer.refit)
        if offer.busy != old.busy:
            self.core.send("BUSY", i=int(offer.busy))

    @property
    def current(self) -> Loop | None:
        """The loop the core is playing (None before the first)."""
        return self.core.loop(self.core.struct.player.current.id)

    @property
    def bar(self) -> int:
        """The bar in progress."""
        return int(self.core.struct.player.bar)

    @property
    def bar_in_loop(self) -> int:
        """0-based bar of the current loop."""
        return int(self.core.struct.player.bar_in_loop)
