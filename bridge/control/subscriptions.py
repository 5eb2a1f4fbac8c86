"""Who listens to what: OSC reply addresses per topic (a parameter name, ``bar`` or ``beat``)."""

from __future__ import annotations

import threading

from bridge.errors import ParameterError

Address = tuple[str, int]


class Subscriptions:
    """Thread-safe sets of reply addresses per topic, at most ``limit`` per topic."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._topics: dict[str, tuple[Address, ...]] = {}
        self._lock = threading.Lock()

    def add(self, topic: str, address: Address) -> None:
        """Subscribe ``address`` to ``topic`` (idempotent); ParameterError when the topic is full."""
        with self._lock:
            current = self._topics.get(topic, ())
            if address in current:
                return
            if len(current) >= self.limit:
                raise ParameterError("listen", f"at most {self.limit} listeners per address", len(current) + 1)
            self._topics[topic] = current + (address,)

    def remove(self, topic: str, address: Address) -> bool:
        """Unsubscribe; True when ``address`` was subscribed."""
        with self._lock:
            current = self._topics.get(topic, ())
            self._topics[topic] = tuple(a for a in current if a != address)
            return address in current

    def listeners(self, topic: str) -> tuple[Address, ...]:
        """The addresses subscribed to ``topic`` (a snapshot)."""
        return self._topics.get(topic, ())
