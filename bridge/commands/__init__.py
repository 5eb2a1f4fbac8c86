"""Subcommands of the ``riff-bridge`` CLI (see :mod:`bridge.cli`)."""
