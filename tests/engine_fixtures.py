"""Session fixtures of the generation engine: the tiny model on disk and an engine over it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model written with save_pretrained to ``<cache>/tiny-v1`` in a temp cache
    (point ``RIFF_BRIDGE_CACHE`` at its parent to make ``--model tiny`` find it)."""
    from bridge.engine.tiny import TINY_VERSION, write_tiny_model

    cache = tmp_path_factory.mktemp("riff-bridge-cache")
    return write_tiny_model(cache / TINY_VERSION)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> "object":
    """A CPU DiffusionEngine loaded from :func:`tiny_model_dir` through from_pretrained."""
    from bridge.engine.diffusion import DiffusionEngine

    return DiffusionEngine(str(tiny_model_dir), device="cpu")
