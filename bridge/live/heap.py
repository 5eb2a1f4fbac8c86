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


#: glibc ``mallopt`` parameters (malloc.h).
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
#: Blocks at least this large are mapped on their own and unmapped when freed (glibc's default
#: threshold rises with every large free, up to 32 MiB, and then large blocks stay in the heap).
MMAP_THRESHOLD = 256 * 1024
#: Heap arenas (glibc's default is 8 per core: each busy thread's garbage in its own arena).
ARENA_MAX = 2


def tune_heap(mmap_threshold: int = MMAP_THRESHOLD, arena_max: int | None = None) -> bool:
    """Fix glibc's mmap threshold (and, given ``arena_max``, the arena count) for a process whose
    block sizes change all session (clips and tensors of every length): large blocks then go
    back to the system when freed, and few arenas fragment less. Not ``arena_max`` in a process
    with a realtime thread: threads sharing an arena wait on its lock. Call before the heavy
    imports. True when glibc took every setting."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    done = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    return done and (arena_max is None or bool(libc.mallopt(M_ARENA_MAX, arena_max)))
