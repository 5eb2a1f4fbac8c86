"""The live view as one object for ``serve`` and ``control``: hub, server, error log, advertiser.

Usage::

    add_arguments(parser)                                    # --web-port, --web-host, --token...
    view = WebView.from_args(args, surfaces, status=session.status)
    view.start()                                             # None when --no-web
    view.announce()                                          # --advertise, after OSC is bound
    session.clip_listeners.append(view.hub.add_clip)         # spectrograms of played clips
    ...
    view.stop()
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from bridge.errors import BridgeError
from bridge.web.hub import LiveHub, StatusProvider
from bridge.web.server import DEFAULT_HOST, DEFAULT_PORT, WebOptions, WebServer

log = logging.getLogger(__name__)
TOKEN_VARIABLE = "RIFF_BRIDGE_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The live view's options (shared by ``serve`` and ``control``)."""
    group = parser.add_argument_group("browser live view and OSCQuery")
    group.add_argument("--web-port", type=int, default=None,
                       help=f"HTTP/WebSocket port of the live view and OSCQuery (default {DEFAULT_PORT}; "
                            "0: any free port)")
    group.add_argument("--web-host", default=DEFAULT_HOST,
                       help=f"listen address (default {DEFAULT_HOST}; any other needs --web-token)")
    group.add_argument("--web-token", default=None,
                       help=f"access token for the page and OSCQuery (default ${TOKEN_VARIABLE})")
    group.add_argument("--no-web", action="store_true", help="do not start the live view")
    group.add_argument("--advertise", action="store_true",
                       help="publish _oscjson._tcp and _osc._udp over mDNS (zeroconf) on the web host's interface")


class WebView:
    """Owns the :class:`LiveHub`, the :class:`WebServer`, the page's log handler and the advertiser."""

    def __init__(self, surfaces: Any, options: WebOptions, status: StatusProvider | None = None,
                 advertise: bool = False, explicit_port: bool = True) -> None:
        self.surfaces = surfaces
        self.hub = LiveHub(surfaces.actions, status)
        self.server = WebServer(self.hub, options, self.osc_address)
        self.advertise, self.explicit_port = advertise, explicit_port
        self.advertiser: Any = None
        self._log_handler: Any = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, surfaces: Any,
                  status: StatusProvider | None = None) -> "WebView | None":
        """Build from :func:`add_arguments`'s options; None with ``--no-web``."""
        if args.no_web:
            return None
        token = getattr(args, "web_token", None) or os.environ.get(TOKEN_VARIABLE) or None
        port = DEFAULT_PORT if args.web_port is None else args.web_port
        return cls(surfaces, WebOptions(args.web_host, port, token), status, args.advertise,
                   explicit_port=args.web_port is not None)

    def start(self) -> "WebView | None":
        """Serve (before or after the control surfaces start; :meth:`announce` advertises once
        the OSC port is bound). A busy default port
        only warns (the page is optional); a port asked for explicitly is an error."""
        from bridge.web.errorlog import PageLogHandler

        try:
            self.server.start()
        except BridgeError as err:
            if self.explicit_port:
                raise
            log.warning("%s; continuing without the live view", err)
            return None
        self._log_handler = PageLogHandler(self.hub.publish).attach()
        return self

    def announce(self) -> None:
        """With ``--advertise``: publish the services (once the OSC port is bound; idempotent)."""
        if self.advertise and self.advertiser is None:
            from bridge.web.advertise import Advertiser

            self.advertiser = Advertiser("riff-bridge", self.server.address, self.osc_address()).start()

    def stop(self) -> None:
        """Unadvertise, stop serving, detach the log handler (idempotent)."""
        if self.advertiser is not None:
            self.advertiser.stop()
            self.advertiser = None
        if self._log_handler is not None:
            self._log_handler.detach()
            self._log_handler = None
        self.server.stop()

    def osc_address(self) -> tuple[str, int] | None:
        """Where the OSC server listens (None without one)."""
        return self.surfaces.osc.address if self.surfaces.osc is not None else None

    @property
    def url(self) -> str:
        """The page's address."""
        return self.server.url
