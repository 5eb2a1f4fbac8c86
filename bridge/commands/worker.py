"""``riff-bridge worker``: the generation engine as a Ray Serve application, for remote clients.

Starts a local Ray cluster (or joins one with ``--address``), deploys ``--replicas`` copies of
the model (``--gpus-per-replica`` GPUs each), prints the URL to give to ``serve/render/
interpolate --engine``, and serves until SIGINT/SIGTERM. Listens on loopback unless
``--host`` says otherwise; beyond loopback it needs a token.
"""

from __future__ import annotations

import argparse

NAME = "worker"
HELP = "Serve the generation model to other machines over HTTP (Ray Serve; clients use --engine URL)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's options."""
    parser.add_argument("--model", required=True,
                        help="tiny (small random model), a diffusers folder or hub id")
    parser.add_argument("--device", default="auto", help="model device in each replica: auto, cpu, cuda")
    parser.add_argument("--replicas", type=int, default=1, help="model replicas (1-64)")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0,
                        help="GPUs each replica reserves (0 for CPU replicas; 0.5 shares a GPU by two)")
    parser.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs each replica reserves")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster (e.g. auto or HEAD:6379) instead of starting one")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the local Ray cluster this starts (default: all; not with --address)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (beyond loopback needs --token)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port")
    parser.add_argument("--token", default=None,
                        help="token clients must send (default: $RIFF_BRIDGE_TOKEN); required beyond loopback")


def run(args: argparse.Namespace) -> int:
    """Check the options, start or join Ray, deploy, print the URL, serve until a signal."""
    import signal
    import threading

    options, host, port = _options(args)
    import ray

    from bridge.remote.serving import deploy, undeploy

    _start_ray(ray, args)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which sets its own
        signal.signal(number, lambda *_: stop.set())
    try:
        deploy(options, host, port)
        _announce(options, host, port)
        stop.wait()
    finally:
        undeploy(shutdown=args.address is None)
        ray.shutdown()
    print("riff-bridge worker stopped", flush=True)
    return 0


def _options(args: argparse.Namespace) -> tuple[object, str, int]:
    """Validated WorkerOptions, host and port (ParameterError before anything starts)."""
    from bridge.errors import ParameterError, check_int
    from bridge.remote.access import check_exposure, resolve_token
    from bridge.remote.options import WorkerOptions

    token = resolve_token(args.token)
    check_exposure(args.host, token)
    if args.address and args.num_cpus is not None:
        raise ParameterError("num_cpus", "no value with --address (the cluster has its own CPUs)", args.num_cpus)
    options = WorkerOptions(args.model, args.device, args.replicas, args.gpus_per_replica,
                            args.cpus_per_replica, token)
    return options, args.host, check_int("port", args.port, 1, 65535)


def _start_ray(ray: object, args: argparse.Namespace) -> None:
    if args.address:
        ray.init(address=args.address, include_dashboard=False, logging_level="WARNING")  # type: ignore[attr-defined]
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING")  # type: ignore[attr-defined]


def _announce(options: object, host: str, port: int) -> None:
    """Print the URL for clients (and how to use it)."""
    import socket

    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown}:{port}"
    token = " --token $RIFF_BRIDGE_TOKEN" if options.token else ""  # type: ignore[attr-defined]
    print(f"riff-bridge worker ready: {url} ({options.replicas} replica(s) of {options.model!r}); "  # type: ignore[attr-defined]
          f"on the DAW machine: riff-bridge serve --engine {url}{token}", flush=True)
