"""The model process's priority: generation takes the CPU nothing else wants.

The realtime path is native (``core.c``): no Python thread of riff-bridge can delay JACK's
callback, so the engine's own threads run at normal priority. The model's process
(:class:`~bridge.live.childengine.ChildProcessEngine`) runs under :data:`MODEL_POLICY`
(``batch``: Linux SCHED_BATCH, for CPU-bound work that need not be woken quickly) at
:data:`MODEL_NICE`, so the performer's interactive programs come first but generation still
gets a share of a busy machine (SCHED_IDLE, used before the core was native, starved it to
nothing whenever anything else was busy).
"""

from __future__ import annotations

import logging
import os
import threading

from bridge.errors import ParameterError

log = logging.getLogger(__name__)

#: Nice value of the model's child process.
MODEL_NICE = 10
#: Scheduling policies of the model process (Linux): the default, "batch" and "idle".
POLICIES = {"normal": getattr(os, "SCHED_OTHER", 0), "batch": getattr(os, "SCHED_BATCH", 3),
            "idle": getattr(os, "SCHED_IDLE", 5)}
#: The model process's policy.
MODEL_POLICY = "batch"


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


def set_scheduling_policy(policy: str | None) -> bool:
    """Put the calling thread (and the threads it starts later) under ``policy``, one of
    :data:`POLICIES` (None: leave it); True when it took effect. Raises ParameterError for
    an unknown name."""
    if policy is None:
        return False
    if policy not in POLICIES:
        raise ParameterError("policy", f"one of {', '.join(POLICIES)}", policy)
    try:
        os.sched_setscheduler(0, POLICIES[policy], os.sched_param(0))
    except (AttributeError, PermissionError, OSError) as err:
        log.debug("cannot set scheduling policy %s: %s", policy, err)
        return False
    return True
