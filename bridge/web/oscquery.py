"""OSCQuery (Vidvox proposal): the OSC namespace as a JSON tree, built from the parameter table.

Every parameter is a read/write method at ``/riff/set/<name>`` (``ACCESS`` 3): a client writes it
by sending that address with ``TYPE``, reads ``VALUE`` over HTTP and follows it with ``LISTEN``
over the WebSocket. The other routes of :data:`bridge.control.namespace.ROUTES` that take fixed
arguments (preset load, bank trigger, new seed...) are write-only methods (``ACCESS`` 2 or 0).
``/riff/get|listen|unlisten/<name>`` are left out: OSCQuery clients read and follow values
through HTTP and the WebSocket instead.

Pure functions of a :class:`~bridge.state.ControlState`; the HTTP side is in
:mod:`bridge.web.server`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge import __version__
from bridge.control.namespace import ROUTES, Route
from bridge.state import PARAMETERS, ControlState, ParameterSpec

#: Node attributes we serve (HOST_INFO's EXTENSIONS lists them as true).
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION")
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "TAGS": False,
              "EXTENDED_TYPE": False, "UNIT": False, "CRITICAL": False, "CLIPMODE": False,
              "OVERLOADS": False, "LISTEN": True, "PATH_CHANGED": False, "PATH_RENAMED": False,
              "PATH_ADDED": False, "PATH_REMOVED": False, "HTML": True}
NO_VALUE, READ, WRITE, READ_WRITE = 0, 1, 2, 3
PARAMETER_PREFIX = "/riff/set/"

_TYPES = {"str": "s", "int": "i", "float": "f", "bool": "i", "choice": "s"}


@dataclass(frozen=True)
class HostAddresses:
    """Where the OSC server and the HTTP/WebSocket server listen (for HOST_INFO)."""

    osc_ip: str
    osc_port: int
    ws_ip: str
    ws_port: int
    name: str = "riff-bridge"


def host_info(addresses: HostAddresses) -> dict[str, Any]:
    """The ``GET /?HOST_INFO`` document."""
    return {"NAME": addresses.name, "EXTENSIONS": dict(EXTENSIONS), "OSC_IP": addresses.osc_ip,
            "OSC_PORT": addresses.osc_port, "OSC_TRANSPORT": "UDP", "WS_IP": addresses.ws_ip,
            "WS_PORT": addresses.ws_port, "VERSION": __version__}


def parameter_type(spec: ParameterSpec) -> str:
    """The OSC type tag a parameter is sent and replied with (bool as i 0/1, as replies are)."""
    return _TYPES[spec.kind]


def parameter_range(spec: ParameterSpec) -> list[dict[str, Any]] | None:
    """``RANGE`` of a parameter: MIN/MAX for numbers and bools, VALS for choices, none for text."""
    if spec.kind in ("int", "float"):
        cast = int if spec.kind == "int" else float
        return [{"MIN": cast(spec.low), "MAX": cast(spec.high)}]
    if spec.kind == "bool":
        return [{"MIN": 0, "MAX": 1}]
    if spec.kind == "choice":
        return [{"VALS": list(spec.choices)}]
    return None


def osc_value(value: Any) -> Any:
    """A state value as OSCQuery's VALUE holds it (bool as 0/1, like the OSC replies)."""
    return int(value) if isinstance(value, bool) else value


def parameter_node(spec: ParameterSpec, state: ControlState) -> dict[str, Any]:
    """The node of one parameter."""
    node: dict[str, Any] = {"FULL_PATH": PARAMETER_PREFIX + spec.name, "TYPE": parameter_type(spec),
                            "ACCESS": READ_WRITE, "VALUE": [osc_value(getattr(state, spec.name))],
                            "DESCRIPTION": f"{spec.doc} Allowed: {spec.allowed()}."}
    bounds = parameter_range(spec)
    if bounds is not None:
        node["RANGE"] = bounds
    return node


def route_types(route: Route) -> str:
    """OSC types of a route's arguments, optional ones included (``i:slot [s:side]`` -> ``is``)."""
    tags = []
    for word in route.arguments.replace("[", " ").replace("]", " ").split():
        tag, _, _ = word.partition(":")
        if len(tag) == 1 and tag.isalpha():
            tags.append(tag)
    return "".join(tags)


def route_node(route: Route) -> dict[str, Any]:
    """The node of a fixed route (write-only when it takes arguments)."""
    node: dict[str, Any] = {"FULL_PATH": route.address, "DESCRIPTION": route.doc.replace("`", "")}
    types = route_types(route)
    node["ACCESS"] = WRITE if types else NO_VALUE
    if types:
        node["TYPE"] = types
    if route.address == "/riff/seed/new" or route.address == "/riff/bank/trigger":
        node["RANGE"] = [{}] * (len(types) - 1) + [{"VALS": ["a", "b"]}]
    return node


def _insert(root: dict[str, Any], node: dict[str, Any]) -> None:
    """Put ``node`` into the tree under its FULL_PATH, creating containers on the way."""
    parts = node["FULL_PATH"].strip("/").split("/")
    here = root
    for depth, part in enumerate(parts[:-1]):
        contents = here.setdefault("CONTENTS", {})
        path = "/" + "/".join(parts[: depth + 1])
        here = contents.setdefault(part, {"FULL_PATH": path, "ACCESS": NO_VALUE, "DESCRIPTION": ""})
    existing = here.setdefault("CONTENTS", {}).get(parts[-1], {})
    here["CONTENTS"][parts[-1]] = {**node, **({"CONTENTS": existing["CONTENTS"]} if "CONTENTS" in existing else {})}


def namespace_tree(state: ControlState) -> dict[str, Any]:
    """The whole OSCQuery tree (root node) for ``state``."""
    root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": NO_VALUE,
                            "DESCRIPTION": "riff-bridge: generative loops over JACK, driven by OSC", "CONTENTS": {}}
    for route in ROUTES:
        if not route.is_pattern:
            _insert(root, route_node(route))
    for spec in PARAMETERS.values():
        _insert(root, parameter_node(spec, state))
    _describe_containers(root)
    return root


_CONTAINER_DOCS = {"/riff": "riff-bridge's OSC namespace", "/riff/set": "Every parameter: send a value to set it",
                   "/riff/preset": "Presets", "/riff/bank": "The prompt bank", "/riff/seed": "Seeds",
                   "/riff/midi": "MIDI learn", "/riff/get": "Reads", "/riff/midi/learn": "MIDI learn"}


def _describe_containers(node: dict[str, Any]) -> None:
    for child in node.get("CONTENTS", {}).values():
        if not child.get("DESCRIPTION"):
            child["DESCRIPTION"] = _CONTAINER_DOCS.get(child["FULL_PATH"], "")
        _describe_containers(child)


def find_node(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The node at ``path`` ("/" is the root), or None."""
    node = tree
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def parameter_of(path: str) -> str | None:
    """The parameter name a node path stands for (``/riff/set/alpha`` -> ``alpha``), else None."""
    if path.startswith(PARAMETER_PREFIX) and path[len(PARAMETER_PREFIX):] in PARAMETERS:
        return path[len(PARAMETER_PREFIX):]
    return None
