"""Returning freed heap memory to the system (glibc ``malloc_trim``), for long sessions.

PyTorch on CPU allocates tensors of a different shape for every clip length; glibc keeps the
freed blocks in its arenas, so a long session's resident memory creeps up although nothing
leaks. Trimming after each generation (a few milliseconds, off the realtime thread) keeps
it flat. Elsewhere than glibc this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim_heap() -> bool:
    """Give free heap pages back to the OS; True when glibc did release some."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
