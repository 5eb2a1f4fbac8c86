"""The ``riff-bridge`` command line.

Each subcommand lives in ``bridge.commands.<module>`` with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import nothing heavy at
import time (``riff-bridge --help`` must not import torch); ``run`` imports what it needs.
Errors derived from :class:`BridgeError` print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from bridge import __version__

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "audio2image",
    "image2audio",
    "render",
    "interpolate",
    "restyle",
    "tiny_model",
    "fetch_model",
    "train_mini",
    "demo",
    "control",
    "presets",
    "serve",
    "worker",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="riff-bridge",
        description="Riffusion-style generative loops into your DAW: JACK out, OSC/MIDI in.",
    )
    parser.add_argument("--version", action="version", version=f"riff-bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"bridge.commands.{name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 1
    from bridge.errors import BridgeError

    try:
        return int(args.handler(args) or 0)
    except BridgeError as err:
        print(f"riff-bridge {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
