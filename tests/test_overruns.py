"""Telling our own overruns from the machine's stalls (:mod:`bridge.live.overruns`), as logic:
the JACK tests in ``test_live_jack.py`` run it against jackd."""

from __future__ import annotations

import time

from bridge.live.overruns import DUTY, OverrunWatch, Sample, classify, is_busy

PERIOD = 128 / 44100  # 2.9 ms


def quiet(running: int = 0) -> Sample:
    """20 ms in which our thread ran 7 callbacks of 10 us."""
    return Sample(0.02, 70_000, running)


def busy(running: int = 0, cpu_us: int = 3_000) -> Sample:
    return Sample(0.02, cpu_us * 1000, running, long=1)


def test_a_sample_is_busy_with_a_long_callback_and_half_a_period_of_cpu_beyond_the_usual_duty() -> None:
    threshold_ns = (PERIOD / 2 + DUTY * 0.02) * 1e9
    assert is_busy(Sample(0.02, int(threshold_ns) + 1, 0, long=1), PERIOD)
    assert not is_busy(Sample(0.02, int(threshold_ns) - 1_000, 0, long=1), PERIOD)
    # a long sample (the sampler itself was late) allows proportionally more usual work
    assert not is_busy(Sample(0.5, int(PERIOD / 2 * 1e9) + 5_000_000, 0, long=1), PERIOD)


def test_cpu_spent_outside_our_callbacks_is_not_an_overrun_of_ours() -> None:
    """Measured: 1808 us of our realtime thread's CPU in 20 ms while no callback took over 5 us
    (libjack's and the kernel's work on that thread)."""
    assert not is_busy(Sample(0.02, 1_808_000, 1, long=0), PERIOD)
    report = classify([quiet(), Sample(0.02, 1_808_000, 1, long=0), quiet()], PERIOD)
    assert (report.ours, report.stalls, report.busy) == (0, 1, 0)


def test_running_with_our_thread_busy_is_ours_and_without_it_a_stall() -> None:
    report = classify([quiet(), busy(running=1), quiet(), quiet(running=2), quiet()], PERIOD)
    assert (report.ours, report.stalls, report.busy) == (1, 2, 1)
    assert report.max_cpu_us == 3000 and report.samples == 5


def test_an_attribution_read_next_to_the_busy_sample_is_still_ours() -> None:
    report = classify([busy(), quiet(running=1), quiet(), quiet(running=1), quiet(), quiet(), quiet(running=1), busy()],
                      PERIOD)
    assert (report.ours, report.stalls) == (2, 1)


def test_a_callback_whose_cpu_time_spans_two_samples_is_busy_in_the_one_it_ended_in() -> None:
    first = Sample(0.02, 4_500_000, 1)  # jackd's line read while the callback still ran
    second = Sample(0.02, 1_500_000, 0, long=1)  # it ended here: 6 ms in all
    assert not is_busy(second, PERIOD) and is_busy(second, PERIOD, first)
    report = classify([quiet(), first, second, quiet()], PERIOD)
    assert (report.ours, report.stalls, report.busy) == (1, 0, 1)


def test_busy_samples_count_without_any_log() -> None:
    report = classify([quiet(), busy(cpu_us=2_500), quiet()], PERIOD)
    assert (report.ours, report.stalls, report.busy) == (0, 0, 1)
    assert "overruns of ours: 0 (busy samples 1)" in report.summary()


def test_the_watch_samples_its_sources_until_stopped() -> None:
    cpu = iter(range(0, 10**12, 50_000))  # 50 us of CPU per read
    counts = iter([0, 0, 1, 1] + [1] * 1000)
    with OverrunWatch(lambda: next(cpu), lambda: 0, lambda: next(counts), PERIOD, interval=0.01) as watch:
        time.sleep(0.1)
    report = watch.report()
    assert report.samples >= 3 and report.stalls == 1 and report.ours == 0
    assert all(s.cpu_ns == 50_000 for s in watch.samples)
