"""The native core's realtime contract, checked on its object code: it can call nothing but
libjack's realtime-safe functions and the compiler's memcpy/memset (no malloc, no lock, no
system call, no I/O, no libm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "bridge" / "live" / "core.c"

#: What core.c may call: libjack's realtime-safe calls (jack/jack.h documents them as usable
#: in the process callback) and the block copies the compiler emits.
ALLOWED = {
    "jack_port_get_buffer", "jack_transport_query", "jack_midi_get_event_count", "jack_midi_event_get",
    "jack_last_frame_time", "jack_get_cycle_times", "jack_get_time", "memcpy", "memset",
}


@pytest.mark.parametrize("flags", [["-O2"], ["-O0"]])
def test_the_core_calls_only_realtime_safe_functions(tmp_path: Path, flags: list[str]) -> None:
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        pytest.skip("gcc and nm are needed (apt-get install gcc binutils)")
    obj = tmp_path / "core.o"
    subprocess.run(["gcc", *flags, "-std=gnu11", "-fPIC", "-c", str(CORE), "-o", str(obj)], check=True)
    undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    symbols = {line.split()[-1] for line in undefined.splitlines() if line.strip()}
    assert symbols <= ALLOWED, f"not realtime safe: {sorted(symbols - ALLOWED)}"
    assert "jack_port_get_buffer" in symbols  # the check really read the callback's calls


def test_the_built_extension_is_the_core_the_tests_check() -> None:
    from bridge.live.core import native

    lib = native().lib
    assert lib.RB_MAX_BLOCK == 8192 and hasattr(lib, "rb_jack_process") and hasattr(lib, "rb_process")
