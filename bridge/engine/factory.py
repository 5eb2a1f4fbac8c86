"""Which engine ``--model`` names, and where it runs (this process or a child process)."""

from __future__ import annotations

from functools import partial
from typing import Any


def load_engine(model: str, device: str = "auto", fault_every: int = 0, dtype: str | None = None,
                compile: bool = False) -> Any:
    """``fake`` -> FakeEngine; anything else -> the diffusion engine (imported lazily) on
    ``device`` in ``dtype`` (None: the device's default), ``compile`` as in ModelSpec.

    ``fault_every`` > 0 wraps it in a :class:`~bridge.engine.fault.FaultInjector`.
    """
    if model == "fake":
        from bridge.engine.fake import FakeEngine

        engine: Any = FakeEngine()
    else:
        from bridge.engine.diffusion import DiffusionEngine

        engine = DiffusionEngine(model, device=device, dtype=dtype, compile=compile)
    if fault_every:
        from bridge.engine.fault import FaultInjector

        engine = FaultInjector(engine, fault_every)
    return engine


def start_engine(model: str, device: str = "auto", in_process: bool = False, fault_every: int = 0,
                 dtype: str | None = None, compile: bool = False) -> Any:
    """The engine for a live session: by default in a started child process, so the model
    never holds the GIL that the JACK process callback needs (see bridge.live.childengine)."""
    if in_process:
        return load_engine(model, device, fault_every, dtype, compile)
    from bridge.live.childengine import ChildProcessEngine
    from bridge.live.priority import MODEL_NICE

    return ChildProcessEngine(partial(load_engine, model, device, fault_every, dtype, compile), nice=MODEL_NICE).start()
