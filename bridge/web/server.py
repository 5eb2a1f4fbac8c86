"""The HTTP/WebSocket server of the live view and OSCQuery (aiohttp, on its own thread).

Routes:

- ``GET /`` from a browser (``Accept: text/html``): the live view page; ``/static/<file>`` its
  assets (a fixed list from the package, nothing read from a path the request names).
- ``GET /live`` (WebSocket): the page's channel: ``hello``, ``param``, ``live``, ``clip``,
  ``error``, ``bank`` and ``result`` messages out; commands in (:mod:`bridge.web.commands`).
- ``GET /?HOST_INFO``, ``GET /<path>`` and ``GET /<path>?<ATTRIBUTE>`` for other clients: the
  OSCQuery tree (404 unknown path, 400 unknown attribute, 204 attribute the node lacks).
- ``GET /`` (WebSocket upgrade): OSCQuery's ``{"COMMAND": "LISTEN"|"IGNORE", "DATA": path}``;
  changes of listened paths come back as binary OSC messages.

Security: loopback by default; on any other host a token is required (``?token=``, an
``Authorization: Bearer`` header or the ``riff_token`` cookie the page sets), compared in
constant time. Requests without it get 401. A WebSocket whose ``Origin`` is another site
gets 403 (a page elsewhere cannot drive the bridge through the visitor's browser).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from bridge.errors import BridgeError
from bridge.remote.access import is_loopback
from bridge.web.commands import run_command
from bridge.web.hub import Client, LiveHub
from bridge.web.oscquery import ATTRIBUTES, HostAddresses, find_node, host_info, namespace_tree

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9080
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
COOKIE = "riff_token"
MAX_MESSAGE = 64 * 1024


@dataclass(frozen=True)
class WebOptions:
    """Where the server listens and its token (required unless ``host`` is loopback)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise BridgeError(f"web-host: listening on {self.host!r} (beyond loopback) needs a token: "
                              "pass --token or set RIFF_BRIDGE_TOKEN")
        if not 0 <= self.port <= 65535:
            raise BridgeError(f"web-port: expected 0..65535, got {self.port}")


class WebServer:
    """Serves :class:`LiveHub` and OSCQuery on ``options.host:port`` from a thread of its own.

    ``start`` returns once the socket is bound (BridgeError when it cannot be); ``address`` is
    the bound (host, port); ``stop`` closes every connection and joins the thread.
    ``osc_address()`` says where the OSC server listens (read per HOST_INFO request, so the
    server may start before the OSC socket is bound).
    """

    def __init__(self, hub: LiveHub, options: WebOptions,
                 osc_address: Callable[[], tuple[str, int] | None] = lambda: None) -> None:
        self.hub, self.options, self.osc_address = hub, options, osc_address
        self.address: tuple[str, int] = (options.host, options.port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "WebServer":
        """Bind and serve on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="riff-web", daemon=True)
        self._thread.start()
        self._ready.wait(30.0)
        if self._failure is not None:
            self._thread.join(5.0)
            raise BridgeError(f"web-port: cannot listen on http://{self.options.host}:{self.options.port} "
                              f"({self._failure}); pass another --web-port/--web-host") from None
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread (idempotent)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread is not None:
            loop.call_soon_threadsafe(stopping.set)
            self._thread.join(10.0)
        self._thread = None

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The page's address (with the token, when one is needed)."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/" + (f"?token={self.options.token}" if self.options.token else "")

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as err:  # noqa: BLE001 - reported by start()
            self._failure = err
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        from aiohttp import web

        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_MESSAGE)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/live", self._page_socket)
        app.router.add_get("/{tail:.*}", self._root)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port)
        await site.start()
        self.address = runner.addresses[0][:2]
        self.hub.attach(asyncio.get_running_loop())
        metrics = asyncio.ensure_future(self.hub.run_metrics())
        self._ready.set()
        log.info("web view on %s", self.url)
        await self._stopping.wait()
        metrics.cancel()
        self.hub.detach()
        await runner.cleanup()

    # -- security -------------------------------------------------------------------------

    def _authorised(self, request: Any) -> bool:
        token = self.options.token
        if not token:
            return True
        given = (request.query.get("token") or request.cookies.get(COOKIE)
                 or request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
        return bool(given) and hmac.compare_digest(given.encode(), token.encode())

    @property
    def _guard(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def guard(request: Any, handler: Any) -> Any:
            if not self._authorised(request):
                return web.Response(status=401, text="riff-bridge: a token is required (?token=...)\n")
            if not _same_origin(request):
                return web.Response(status=403, text="riff-bridge: cross-site WebSocket refused\n")
            response = await handler(request)
            if self.options.token and request.query.get("token") and isinstance(response, web.Response):
                response.set_cookie(COOKIE, self.options.token, httponly=True, samesite="Strict")
            return response

        return guard

    # -- page -----------------------------------------------------------------------------

    async def _static(self, request: Any) -> Any:
        from aiohttp import web

        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = resources.files("bridge.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    async def _page_socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        socket = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
        await socket.prepare(request)
        client = Client("page")
        client.put(json.dumps(self.hub.hello()))
        self.hub.clients.add(client)
        writer = asyncio.ensure_future(_write(socket, client))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    asyncio.ensure_future(self._command(client, message.data))
        finally:
            self.hub.clients.discard(client)
            writer.cancel()
        return socket

    async def _command(self, client: Client, text: str) -> None:
        try:
            command = json.loads(text)
        except ValueError as err:
            command = None
            log.info("page sent malformed JSON: %s", err)
        result = await asyncio.to_thread(run_command, self.hub.actions, command)
        client.put(json.dumps(result))
        if result["ok"] and isinstance(command, dict) and command.get("type") == "preset_save":
            self.hub.publish({"type": "presets", "presets": self.hub._presets()})

    # -- OSCQuery -------------------------------------------------------------------------

    async def _root(self, request: Any) -> Any:
        from aiohttp import web

        if request.headers.get("Upgrade", "").lower() == "websocket" and request.path == "/":
            return await self._query_socket(request)
        if request.path == "/" and "text/html" in request.headers.get("Accept", "") and not self._attribute(request):
            return await self._page(request)
        if request.path == "/" and "HOST_INFO" in request.query:
            return web.json_response(host_info(self._addresses(request)))
        return self._query(request)

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        body = resources.files("bridge.web").joinpath("static", "index.html").read_bytes()
        return web.Response(body=body, content_type="text/html", headers={"Cache-Control": "no-cache"})

    def _attribute(self, request: Any) -> str | None:
        names = [key for key in request.query if key != "token"]
        return names[0] if names else None

    def _query(self, request: Any) -> Any:
        from aiohttp import web

        node = find_node(namespace_tree(self.hub.store.snapshot()), request.path)
        if node is None:
            return web.json_response({"ERROR": f"no OSC node at {request.path}"}, status=404)
        attribute = self._attribute(request)
        if attribute is None:
            return web.json_response(node)
        if attribute not in ATTRIBUTES:
            return web.json_response({"ERROR": f"attribute: expected one of {', '.join(ATTRIBUTES)}, "
                                               f"got {attribute!r}"}, status=400)
        if attribute not in node:
            return web.Response(status=204)
        return web.json_response({attribute: node[attribute]})

    def _addresses(self, request: Any) -> HostAddresses:
        osc_ip, osc_port = self.osc_address() or ("", 0)
        ws_ip, ws_port = self.address
        return HostAddresses(osc_ip, int(osc_port), ws_ip, int(ws_port))

    async def _query_socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        socket = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
        await socket.prepare(request)
        client = Client("oscquery")
        self.hub.clients.add(client)
        writer = asyncio.ensure_future(_write(socket, client))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    _listen_command(client, message.data)
        finally:
            self.hub.clients.discard(client)
            writer.cancel()
        return socket


def _same_origin(request: Any) -> bool:
    """False for a WebSocket opened by a page of another site (a browser sends its Origin;
    tools such as OSCQuery clients send none), so no web page can drive the bridge."""
    origin = request.headers.get("Origin")
    if origin is None or request.headers.get("Upgrade", "").lower() != "websocket":
        return True
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == request.host


def _listen_command(client: Client, text: str) -> None:
    """Apply ``{"COMMAND": "LISTEN"|"IGNORE", "DATA": path}``; anything else is logged and ignored."""
    try:
        command = json.loads(text)
        verb, path = command["COMMAND"], command["DATA"]
    except (ValueError, KeyError, TypeError):
        log.info("OSCQuery: unreadable command %r", text[:200])
        return
    if verb == "LISTEN" and isinstance(path, str):
        client.listening.add(path)
    elif verb == "IGNORE" and isinstance(path, str):
        client.listening.discard(path)
    else:
        log.info("OSCQuery: unsupported command %r", text[:200])


async def _write(socket: Any, client: Client) -> None:
    """Send the client's queue until it yields None or the socket closes."""
    while (item := await client.queue.get()) is not None:
        try:
            if isinstance(item, bytes):
                await socket.send_bytes(item)
            else:
                await socket.send_str(item)
        except (ConnectionError, RuntimeError):
            return
    await socket.close()
