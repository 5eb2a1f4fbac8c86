"""The one root exception of riff-bridge and its few specialisations.

Every message names what was wrong, what is allowed, and what was given, so that a
musician reading it on stage (or in an ``/riff/error`` reply) knows what to change.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Root of every error riff-bridge raises on purpose."""


class ParameterError(BridgeError, ValueError):
    """A parameter value outside its allowed set.

    ``str(err)`` reads ``"<name>: expected <allowed>, got <given>"``.
    """

    def __init__(self, name: str, allowed: str, given: Any) -> None:
        self.name = name
        self.allowed = allowed
        self.given = given
        super().__init__(f"{name}: expected {allowed}, got {given!r}")


class InputFileError(BridgeError):
    """A file that could not be used: missing, unreadable, or of the wrong kind.

    ``str(err)`` reads ``"<path>: <problem>"``.
    """

    def __init__(self, path: Any, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelUnavailableError(BridgeError):
    """Model weights that could not be found or loaded; the message says how to get them."""


def check_range(name: str, value: float, low: float, high: float) -> float:
    """Return ``value`` as float if ``low <= value <= high``, else raise ParameterError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, f"a number in [{low:g}, {high:g}]", value) from None
    if not low <= number <= high:  # also rejects NaN
        raise ParameterError(name, f"a number in [{low:g}, {high:g}]", value)
    return number


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` as int if it is integral and ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ParameterError(name, f"an integer in [{low}, {high}]", value)
    if not low <= int(value) <= high:
        raise ParameterError(name, f"an integer in [{low}, {high}]", value)
    return int(value)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ParameterError(name, "one of " + ", ".join(map(str, choices)), value)
    return value
