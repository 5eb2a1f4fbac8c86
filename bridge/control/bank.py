"""Prompt banks: numbered slots of prompt, seed, negative prompt and seed image.

A pad, ``/riff/bank/trigger N SIDE`` or a program of prompts picks slot ``N`` (1-based) and
copies its fields onto side A or B (``prompt_a``/``seed_a`` or ``prompt_b``/``seed_b``;
``negative`` and ``seed_image`` are shared). Fields a slot leaves out keep their value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.errors import ParameterError
from bridge.state import PARAMETERS

SIDES = ("a", "b")
MAX_SLOTS = 128
SLOT_KEYS = ("prompt", "seed", "negative", "seed_image")


def check_side(side: Any) -> str:
    """``side`` if it is ``a`` or ``b`` (case-insensitive), else ParameterError."""
    if isinstance(side, str) and side.lower() in SIDES:
        return side.lower()
    raise ParameterError("side", "a or b", side)


@dataclass(frozen=True)
class Slot:
    """One bank entry; ``None`` fields leave the current value alone."""

    prompt: str
    seed: int | None = None
    negative: str | None = None
    seed_image: str | None = None

    def __post_init__(self) -> None:
        PARAMETERS["prompt_a"].coerce(self.prompt)
        if self.seed is not None:
            PARAMETERS["seed_a"].coerce(self.seed)
        if self.negative is not None:
            PARAMETERS["negative"].coerce(self.negative)
        if self.seed_image is not None:
            PARAMETERS["seed_image"].coerce(self.seed_image)

    def values(self, side: str) -> dict[str, Any]:
        """The parameter changes that put this slot on ``side``."""
        side = check_side(side)
        values: dict[str, Any] = {f"prompt_{side}": self.prompt}
        if self.seed is not None:
            values[f"seed_{side}"] = self.seed
        if self.negative is not None:
            values["negative"] = self.negative
        if self.seed_image is not None:
            values["seed_image"] = self.seed_image
        return values

    def to_toml(self) -> dict[str, Any]:
        """The TOML table of this slot (only fields that are set)."""
        return {key: getattr(self, key) for key in SLOT_KEYS if getattr(self, key) is not None}

    @classmethod
    def from_toml(cls, table: Any, where: str) -> "Slot":
        """Read one ``[[bank.slot]]`` table; ParameterError names ``where``."""
        if not isinstance(table, dict):
            raise ParameterError(where, "a table with prompt, seed, negative, seed_image", table)
        unknown = set(table) - set(SLOT_KEYS)
        if unknown or "prompt" not in table:
            raise ParameterError(where, "keys " + ", ".join(SLOT_KEYS) + " (prompt required)",
                                 sorted(table))
        try:
            return cls(**table)
        except ParameterError as err:
            raise ParameterError(f"{where}.{err.name}", err.allowed, err.given) from None


@dataclass(frozen=True)
class PromptBank:
    """An ordered tuple of slots, addressed 1..len."""

    slots: tuple[Slot, ...] = ()

    def __post_init__(self) -> None:
        if len(self.slots) > MAX_SLOTS:
            raise ParameterError("bank.slot", f"at most {MAX_SLOTS} slots", len(self.slots))

    def slot(self, number: Any) -> Slot:
        """Slot ``number`` (1-based), or ParameterError naming the valid range."""
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(self.slots):
            allowed = f"an integer in [1, {len(self.slots)}]" if self.slots else "a slot (the bank is empty)"
            raise ParameterError("slot", allowed, number)
        return self.slots[number - 1]

    def to_toml(self) -> dict[str, Any]:
        """The ``[bank]`` table."""
        return {"slot": [slot.to_toml() for slot in self.slots]}

    @classmethod
    def from_toml(cls, table: Any) -> "PromptBank":
        """Read a ``[bank]`` table (``[[bank.slot]]`` array)."""
        if not isinstance(table, dict) or set(table) - {"slot"}:
            raise ParameterError("bank", "a table with a [[bank.slot]] array", table)
        slots = table.get("slot", [])
        if not isinstance(slots, list):
            raise ParameterError("bank.slot", "an array of tables", slots)
        return cls(tuple(Slot.from_toml(t, f"bank.slot[{i + 1}]") for i, t in enumerate(slots)))
