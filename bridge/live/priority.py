"""Thread priority: how the live engine's ordinary threads stay responsive under CPU load.

The JACK process callback runs Python, so before each block it must take the GIL. When the
thread holding the GIL is descheduled by a busy machine, the realtime thread waits for it
and the block can miss its deadline. Giving the engine's own Python threads (worker,
monitor) a higher nice priority than background load lets the scheduler run them as soon as
they are runnable, so they reach the next GIL release quickly. Best effort: lowering the nice
value needs root or CAP_SYS_NICE; without it nothing changes.

The model's own process (:class:`~bridge.live.childengine.ChildProcessEngine`) gets
:data:`MODEL_NICE`: above background load, so generation keeps up on a busy machine, but
below the light threads, whose wakeups must never wait behind the model's busy threads.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

#: Nice value of the worker and monitor threads (0 = normal; negative = more CPU share).
DEFAULT_NICE = -15
#: Nice value of the model's child process: between background load (0) and DEFAULT_NICE.
MODEL_NICE = -5


def raise_thread_priority(nice: int | None) -> bool:
    """Set the calling thread's nice value to ``nice`` (None: leave it); True when it took effect."""
    if nice is None:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (PermissionError, OSError) as err:
        log.debug("cannot set thread nice %d: %s", nice, err)
        return False
    return True
