"""``riff-bridge serve --config FILE``: a TOML file of option defaults.

Keys are the long option names with dashes or underscores (``bpm``, ``osc-port``,
``jack_name``...), at the top level or in a ``[serve]`` table. Values given on the command
line win over the file; the file wins over built-in defaults. Unknown keys and wrong types
are errors that name the key, the allowed values and what was given.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from bridge.errors import InputFileError, ParameterError


def read_config(path: str | Path) -> dict[str, Any]:
    """The option table of a config file (``[serve]`` or top level), keys normalised to dests."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such config file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"not valid TOML ({err})") from None
    table = doc.get("serve", doc)
    if not isinstance(table, dict):
        raise InputFileError(path, "[serve] must be a table")
    return {str(key).replace("-", "_"): value for key, value in table.items() if key != "serve"}


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser, config: dict[str, Any]) -> None:
    """Set each ``config`` value on ``args`` unless the command line changed that option."""
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "handler")}
    for key, value in config.items():
        action = actions.get(key)
        if action is None:
            raise ParameterError(f"config key {key!r}", "one of " + ", ".join(sorted(actions)), value)
        if getattr(args, key) == action.default:
            setattr(args, key, _typed(action, key, value))


def _typed(action: argparse.Action, key: str, value: Any) -> Any:
    """``value`` converted as the option's own type would (lists for nargs options)."""
    if action.nargs in ("+", "*"):
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if action.type is not None and not isinstance(value, bool):
        try:
            return action.type(value)
        except (TypeError, ValueError):
            raise ParameterError(f"config key {key!r}", f"a value for {action.type.__name__}", value) from None
    if isinstance(action.default, bool) and not isinstance(value, bool):
        raise ParameterError(f"config key {key!r}", "true or false", value)
    return value
