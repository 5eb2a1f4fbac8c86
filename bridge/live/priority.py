"""Thread priority: how the live engine's ordinary threads stay responsive under CPU load.

The JACK process callback runs Python, so before each block it must take the GIL. When the
thread holding the GIL is descheduled by a busy machine, the realtime thread waits for it
and the block can miss its deadline. Giving the engine's own Python threads (worker,
monitor) a higher nice priority than background load lets the scheduler run them as soon as
they are runnable, so they reach the next GIL release quickly. Best effort: lowering the nice
value needs root or CAP_SYS_NICE; without it nothing changes.

The model's own process (:class:`~bridge.live.childengine.ChildProcessEngine`) runs under
:data:`MODEL_POLICY` (``idle``: Linux SCHED_IDLE): it gets every CPU cycle nothing else
wants, which on a machine running just the bridge is nearly all of them, and it never delays
a thread of the engine's process that holds the GIL the realtime callback is waiting for.
With SCHED_IDLE refused (or policy ``normal``) it runs at :data:`MODEL_NICE`, below the
light threads. Measured with ``bench/soak.py`` (150 s, random controls, 2 cores): nice -5
gave 3 to 4 xruns, SCHED_IDLE 1, at the same generation speed.
"""

from __future__ import annotations

import logging
import os
import threading

from bridge.errors import ParameterError

log = logging.getLogger(__name__)

#: Nice value of the worker and monitor threads (0 = normal; negative = more CPU share).
DEFAULT_NICE = -15
#: Nice value of the model's child process: between background load (0) and DEFAULT_NICE.
MODEL_NICE = -5
#: Scheduling policies of the model process (Linux): the default, "batch" and "idle".
POLICIES = {"normal": getattr(os, "SCHED_OTHER", 0), "batch": getattr(os, "SCHED_BATCH", 3),
            "idle": getattr(os, "SCHED_IDLE", 5)}
#: The model process's policy.
MODEL_POLICY = "idle"


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


def raise_process_priority(nice: int | None) -> dict[int, int]:
    """Give every thread of this process nice value ``nice`` unless it already has a lower one.

    Any Python thread can hold the GIL the realtime callback waits for, so a thread left at
    the default priority (the main thread, an OSC server thread, JACK's notification thread)
    can be descheduled by busier processes while holding it. Threads started later inherit
    the value of the thread that starts them. Returns the previous values of the threads it
    changed (for :func:`restore_priorities`); empty when ``nice`` is None or not permitted.
    """
    changed: dict[int, int] = {}
    if nice is None:
        return changed
    for tid in _thread_ids():
        try:
            before = os.getpriority(os.PRIO_PROCESS, tid)
            if before > nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed[tid] = before
        except (PermissionError, OSError) as err:  # thread gone, or not permitted
            log.debug("cannot set nice %d on thread %d: %s", nice, tid, err)
    return changed


def restore_priorities(previous: dict[int, int]) -> None:
    """Put back the nice values :func:`raise_process_priority` changed (threads still alive)."""
    for tid, nice in previous.items():
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (PermissionError, OSError):
            pass


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [threading.get_native_id()]
