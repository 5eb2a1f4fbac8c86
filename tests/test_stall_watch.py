"""The host-stall watch that lets a JACK test be retried once (tests/stall_watch.py)."""

from __future__ import annotations

import time

from stall_watch import OVERSLEEP_MS, STEAL_PERCENT, StallWatch


def test_only_stalled_seconds_inside_the_window_count() -> None:
    watch = StallWatch()
    try:
        time.sleep(1.3)  # the watcher logs a line a second
        logged = watch.path.read_text().splitlines()
        assert logged and all(len(line.split()) == 3 for line in logged)
        quiet = [line for line in logged if float(line.split()[1]) < OVERSLEEP_MS
                 and float(line.split()[2]) < STEAL_PERCENT]
        watch.path.write_text("".join(line + "\n" for line in quiet)
                              + f"1000.0 {OVERSLEEP_MS + 1:.1f} 0.0\n"     # a late realtime thread
                              + f"2000.0 0.5 {STEAL_PERCENT + 5:.1f}\n"    # the host took the CPUs
                              + f"3000.0 {OVERSLEEP_MS - 1:.1f} {STEAL_PERCENT - 1:.1f}\n")  # neither
        assert len(watch.stalls(999.5, 1000.5)) == 1 and "ms late" in watch.stalls(999.5, 1000.5)[0]
        assert len(watch.stalls(1500.0, 2500.0)) == 1
        assert watch.stalls(2500.0, 3500.0) == [] and watch.stalls(1002.0, 1998.0) == []
    finally:
        watch.close()
    assert not watch.path.exists()


def test_a_retry_waits_until_the_host_has_been_calm_for_a_while() -> None:
    watch = StallWatch()
    try:
        watch._child.kill()  # this test writes the log itself
        watch._child.wait()
        now = time.time()
        calm = "".join(f"{now - k:.3f} 1.0 0.0\n" for k in range(6, 0, -1))
        watch.path.write_text(calm)
        assert watch.wait_calm(seconds=5, limit=3) < 1.0
        watch.path.write_text(calm + f"{now:.3f} {OVERSLEEP_MS + 5:.1f} 0.0\n")  # a stall just now
        assert watch.wait_calm(seconds=5, limit=1.5) >= 1.5
    finally:
        watch.close()
