"""Commands from the page, applied through the same :class:`~bridge.control.actions.Actions` as OSC.

A command is a JSON object ``{"type": ..., "id": ...}``; :func:`run_command` returns the
result message ``{"type": "result", "id", "ok", "control", "error"}``. ``control`` names the
page control the error belongs beside (a parameter name, ``preset`` or ``bank``). Values are
validated exactly as ``/riff/set`` validates them (``Actions.set`` -> Quantizer -> StateStore).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from bridge.control.actions import Actions
from bridge.errors import BridgeError, ParameterError

log = logging.getLogger(__name__)


def _set(actions: Actions, command: dict[str, Any]) -> Any:
    return actions.set(_text(command, "name"), command.get("value"))


def _seed_new(actions: Actions, command: dict[str, Any]) -> Any:
    return actions.new_seed(command.get("side", "a"))


def _preset_load(actions: Actions, command: dict[str, Any]) -> Any:
    return actions.load_preset(_text(command, "name")).name


def _preset_save(actions: Actions, command: dict[str, Any]) -> Any:
    return str(actions.save_preset(_text(command, "name"), bool(command.get("overwrite", False))))


def _bank_trigger(actions: Actions, command: dict[str, Any]) -> Any:
    return actions.trigger_slot(command.get("slot"), command.get("side", "a"))


def _text(command: dict[str, Any], key: str) -> str:
    value = command.get(key)
    if not isinstance(value, str):
        raise ParameterError(key, "a string", value)
    return value


HANDLERS: dict[str, Callable[[Actions, dict[str, Any]], Any]] = {
    "set": _set, "seed_new": _seed_new, "preset_load": _preset_load,
    "preset_save": _preset_save, "bank_trigger": _bank_trigger,
}
#: The page control an error of each command type is shown beside.
CONTROLS = {"seed_new": "seed", "preset_load": "preset", "preset_save": "preset", "bank_trigger": "bank"}


def control_of(command: dict[str, Any]) -> str:
    """Where the page shows this command's error."""
    if command.get("type") == "set":
        return str(command.get("name", ""))
    if command.get("type") == "seed_new":
        return f"seed_{command.get('side', 'a')}"
    return CONTROLS.get(str(command.get("type")), "page")


def run_command(actions: Actions, command: Any) -> dict[str, Any]:
    """Apply one page command; never raises (errors are in the result)."""
    if not isinstance(command, dict):
        return _result(None, "page", None, "command: expected a JSON object")
    handler = HANDLERS.get(str(command.get("type")))
    control = control_of(command)
    if handler is None:
        return _result(command.get("id"), control, None,
                       f"type: expected one of {', '.join(HANDLERS)}, got {command.get('type')!r}")
    try:
        return _result(command.get("id"), control, handler(actions, command), None)
    except BridgeError as err:
        log.info("page %s: %s", command.get("type"), err)
        return _result(command.get("id"), control, None, str(err))
    except Exception as err:  # noqa: BLE001 - the server keeps serving
        log.exception("page command %s failed", command.get("type"))
        return _result(command.get("id"), control, None, f"internal error: {type(err).__name__}: {err}")


def _result(ident: Any, control: str, value: Any, error: str | None) -> dict[str, Any]:
    return {"type": "result", "id": ident, "ok": error is None, "control": control,
            "value": value if isinstance(value, (int, float, str, bool, type(None))) else None,
            "error": error}
