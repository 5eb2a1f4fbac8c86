"""Options of the worker and of its clients (light: no ray, no torch at import).

Commands that generate take ``--engine URL --token T``: ``render`` and ``interpolate``
through ``bridge.commands.render.add_model_arguments``/``make_engine``, ``serve`` directly.
A new generating command (e.g. ``restyle``) gets them by using those two helpers; its
captured input must reach the engine as a request's ``seed_image`` (a file or a built-in),
which the client turns into PNG bytes (the worker never opens a path).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from bridge.errors import check_int, check_range


@dataclass(frozen=True)
class WorkerOptions:
    """What ``riff-bridge worker`` deploys: model, device, replicas and the resources each
    reserves, and the token clients must send (None: no token, loopback only)."""

    model: str = "tiny"
    device: str = "auto"
    replicas: int = 1
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    token: str | None = None

    def __post_init__(self) -> None:
        check_int("replicas", self.replicas, 1, 64)
        check_range("gpus_per_replica", self.gpus_per_replica, 0, 16)
        check_range("cpus_per_replica", self.cpus_per_replica, 0, 256)

    @property
    def threads(self) -> int:
        """torch threads per replica: the CPUs it reserves, at least one."""
        return max(1, round(self.cpus_per_replica))


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine URL``, ``--token`` and ``--engine-timeout`` for commands that generate."""
    parser.add_argument("--engine", default=None, metavar="URL",
                        help="generate on a `riff-bridge worker` at this URL instead of a local model")
    parser.add_argument("--token", default=None,
                        help="the worker's token (default: $RIFF_BRIDGE_TOKEN)")
    parser.add_argument("--engine-timeout", type=float, default=120.0,
                        help="seconds a clip may take on the worker before it counts as failed")


def remote_engine(args: argparse.Namespace) -> Any:
    """The RemoteEngine ``--engine/--token/--engine-timeout`` describe (None without --engine)."""
    if not getattr(args, "engine", None):
        return None
    from bridge.remote.access import resolve_token
    from bridge.remote.client import RemoteEngine

    timeout = check_range("engine_timeout", args.engine_timeout, 1.0, 3600.0)
    return RemoteEngine(args.engine, resolve_token(args.token), timeout)
