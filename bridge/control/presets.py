"""Presets: TOML files of default parameters, a prompt bank and a controller map.

Two folders hold them: the factory folder (the repository's ``presets/``, read-only to the
bridge) and the user folder (``--presets-dir``, default ``$XDG_CONFIG_HOME/riff-bridge/presets``
or ``~/.config/riff-bridge/presets``). A name is looked up in the user folder first, so a user
preset shadows a factory one of the same name. Names come from the network, so they are
validated (1-64 of ``A-Z a-z 0-9 _ - .``, not starting with a dot, no ``..``, no separators)
and the resolved path must lie inside the folder. Saving writes only to the user folder,
atomically, and never replaces an existing file unless asked to (then the old file is kept
as ``NAME.toml.bak``).

File layout (every table optional; unknown tables or keys are errors)::

    [preset]       description = "..."
    [parameters]   alpha = 0.0, prompt_a = "...", ...   (any of PARAMETERS)
    [bank]         [[bank.slot]] prompt = "...", seed = 1, negative = "...", seed_image = "..."
    [controller]   see bridge.control.midi_map.MAP_FORMAT
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from bridge.control.bank import PromptBank
from bridge.control.midi_map import ControllerMap
from bridge.errors import BridgeError, InputFileError, ParameterError
from bridge.state import PARAMETERS

FACTORY_DIR = Path(__file__).resolve().parents[2] / "presets"
#: The user's learned MIDI mappings live in this preset (a ``[controller]`` table only).
LEARNED_NAME = "midi-learned"
MAX_PRESET_BYTES = 256 * 1024
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "1-64 of A-Z a-z 0-9 _ - . (no leading dot, no '..', no path separators)"
TABLES = ("preset", "parameters", "bank", "controller")


def default_user_dir() -> Path:
    """``$XDG_CONFIG_HOME/riff-bridge/presets`` (``~/.config`` when the variable is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "riff-bridge" / "presets"


def check_name(name: Any) -> str:
    """``name`` if it is a safe preset name, else ParameterError (see NAME_RULE)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ParameterError("name", NAME_RULE, name)
    return name


def contained_path(folder: Path, name: str, suffix: str = ".toml") -> Path:
    """``folder/NAME.toml`` after validating ``name`` and checking the resolved path stays inside."""
    root = folder.resolve()
    path = (root / f"{check_name(name)}{suffix}").resolve()
    if path.parent != root:
        raise ParameterError("name", f"a file directly inside {root}", name)
    return path


@dataclass(frozen=True)
class Preset:
    """One preset file's content; ``parameters`` hold validated values."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    bank: PromptBank | None = None
    controller: ControllerMap | None = None

    def to_toml(self) -> dict[str, Any]:
        """The TOML document (empty tables left out)."""
        doc: dict[str, Any] = {"preset": {"description": self.description}}
        if self.parameters:
            doc["parameters"] = dict(self.parameters)
        if self.bank is not None:
            doc["bank"] = self.bank.to_toml()
        if self.controller is not None:
            doc["controller"] = self.controller.to_toml()
        return doc

    @classmethod
    def from_toml(cls, name: str, doc: dict[str, Any]) -> "Preset":
        """Validate a parsed TOML document; raises ParameterError naming the bad key."""
        unknown = sorted(set(doc) - set(TABLES))
        if unknown:
            raise ParameterError("table", "[" + "], [".join(TABLES) + "]", unknown)
        head = doc.get("preset", {})
        if not isinstance(head, dict) or set(head) - {"description"}:
            raise ParameterError("preset", "a table with description", head)
        return cls(
            name=name,
            description=str(head.get("description", "")),
            parameters=_parameters(doc.get("parameters", {})),
            bank=PromptBank.from_toml(doc["bank"]) if "bank" in doc else None,
            controller=ControllerMap.from_toml(doc["controller"]) if "controller" in doc else None,
        )


def _parameters(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ParameterError("parameters", "a table of parameter = value", table)
    values = {}
    for name, value in table.items():
        spec = PARAMETERS.get(name)
        if spec is None:
            raise ParameterError("parameters", "keys among " + ", ".join(PARAMETERS), name)
        values[name] = spec.coerce(value)
    return values


class PresetStore:
    """The factory and user preset folders, with safe load and save."""

    def __init__(self, user_dir: Path | str | None = None,
                 factory_dir: Path | str | None = FACTORY_DIR) -> None:
        self.user_dir = Path(user_dir) if user_dir is not None else default_user_dir()
        self.factory_dir = Path(factory_dir) if factory_dir is not None else None

    def folders(self) -> list[tuple[str, Path]]:
        """(origin, folder) in lookup order: user first, then factory."""
        folders = [("user", self.user_dir)]
        if self.factory_dir is not None:
            folders.append(("factory", self.factory_dir))
        return folders

    def names(self) -> dict[str, str]:
        """Every loadable preset name -> ``user`` or ``factory`` (the one a load would read)."""
        found: dict[str, str] = {}
        for origin, folder in reversed(self.folders()):
            for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
                if NAME_PATTERN.fullmatch(path.stem) and ".." not in path.stem:
                    found[path.stem] = origin
        return dict(sorted(found.items()))

    def find(self, name: str) -> Path:
        """The file a load of ``name`` reads; ParameterError listing the names when missing."""
        for _, folder in self.folders():
            path = contained_path(folder, name)
            if path.is_file():
                return path
        names = ", ".join(self.names())
        raise ParameterError("preset", f"one of {names}" if names else "a saved preset", name)

    def load(self, name: str) -> Preset:
        """Read and validate preset ``name``; InputFileError names the file on any problem."""
        return read_preset(self.find(name), name)

    def save(self, preset: Preset, overwrite: bool = False) -> Path:
        """Write ``preset`` into the user folder; refuses to replace a file unless ``overwrite``."""
        path = contained_path(self.user_dir, preset.name)
        write_toml(path, preset.to_toml(), overwrite)
        return path

    def load_learned(self) -> ControllerMap:
        """The user's learned mappings (an empty map when none were saved yet)."""
        path = contained_path(self.user_dir, LEARNED_NAME)
        if not path.is_file():
            return ControllerMap(name="learned")
        return read_preset(path, LEARNED_NAME).controller or ControllerMap(name="learned")

    def save_learned(self, mapping: ControllerMap) -> Path:
        """Replace the learned-map file atomically (the previous one kept as ``.bak``)."""
        path = contained_path(self.user_dir, LEARNED_NAME)
        preset = Preset(LEARNED_NAME, "MIDI mappings made with /riff/midi/learn", controller=mapping)
        write_toml(path, preset.to_toml(), overwrite=True)
        return path


def read_preset(path: Path, name: str) -> Preset:
    """Parse and validate one preset file; InputFileError ``"<path>: <problem>"`` on failure."""
    try:
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise InputFileError(path, f"larger than {MAX_PRESET_BYTES} bytes")
        with path.open("rb") as handle:
            return Preset.from_toml(name, tomllib.load(handle))
    except InputFileError:
        raise
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(path, f"not valid TOML: {err}") from None
    except (BridgeError, OSError) as err:
        raise InputFileError(path, str(err)) from None


def write_toml(path: Path, doc: dict[str, Any], overwrite: bool) -> None:
    """Write ``doc`` to ``path`` atomically; an existing file is never lost.

    Without ``overwrite`` an existing file is an error (checked atomically with a hard link);
    with it, the old file is first copied to ``<path>.bak``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(tomli_w.dumps(doc).encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        _install(Path(temp), path, overwrite)
    finally:
        Path(temp).unlink(missing_ok=True)


def _install(temp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        if path.exists():
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # atomic "create only if absent"
    except FileExistsError:
        raise InputFileError(path, "already exists; save with overwrite to replace it "
                                   "(the old file is then kept as .bak)") from None
    except OSError:  # no hard links on this file system: reserve the name, then replace
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(temp, path)
