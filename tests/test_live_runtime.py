"""The model process's runtime settings: its scheduling policy and its heap."""

from __future__ import annotations

import os
import threading

import pytest


def test_scheduling_policy_applies_to_the_calling_thread_and_names_bad_values() -> None:
    from bridge.errors import ParameterError
    from bridge.live.childengine import ChildProcessEngine
    from bridge.live.priority import POLICIES, set_scheduling_policy

    seen: list[int] = []

    def worker() -> None:
        assert set_scheduling_policy("idle")
        seen.append(os.sched_getscheduler(0))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [POLICIES["idle"]]
    assert os.sched_getscheduler(0) == POLICIES["normal"]  # the caller's thread is untouched
    assert not set_scheduling_policy(None)
    with pytest.raises(ParameterError, match=r"policy: expected one of normal, batch, idle, got 'fast'"):
        set_scheduling_policy("fast")
    with pytest.raises(ParameterError, match="policy"):
        ChildProcessEngine(dict, policy="fast")


_HEAP_SCRIPT = """
import sys
import numpy as np
from bridge.live.heap import tune_heap

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "tuned":
    assert tune_heap()
warm = [np.ones(600_000) for _ in range(4)]  # 4.8 MB blocks; freeing them raises glibc's threshold
del warm
before = rss_mib()
big, pins = [], []
for _ in range(20):  # large blocks with small live blocks between them (a session's heap)
    big.append(np.ones(600_000))
    pins.append(np.ones(300))
del big
print(rss_mib() - before)
"""


def test_a_tuned_heap_gives_freed_clip_sized_blocks_back_to_the_system() -> None:
    import subprocess
    import sys

    def kept_mib(mode: str) -> float:
        done = subprocess.run([sys.executable, "-c", _HEAP_SCRIPT, mode], capture_output=True, text=True,
                              timeout=60, check=True)
        return float(done.stdout.split()[-1])

    default, tuned = kept_mib("default"), kept_mib("tuned")
    assert default > 50, f"glibc default kept {default:.1f} MiB: the test no longer shows the problem"
    assert tuned < 10, f"tuned heap kept {tuned:.1f} MiB of 92 MiB freed"
