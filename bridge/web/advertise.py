"""``--advertise``: publish the OSCQuery server (``_oscjson._tcp``) and the OSC port (``_osc._udp``)
over mDNS/DNS-SD with python-zeroconf, so Chataigne, Max/RNBO, ossia score... find riff-bridge.

The responder binds only to the interface of the web server's host: on loopback (the default)
nothing leaves the machine. Multicast beyond the machine happens only with ``--web-host`` set
to a real interface (which needs a token anyway).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)

OSCQUERY_TYPE = "_oscjson._tcp.local."
OSC_TYPE = "_osc._udp.local."


def _addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce for ``host`` (every interface's for 0.0.0.0)."""
    if host in ("0.0.0.0", ""):
        from zeroconf import get_all_addresses

        return [a for a in get_all_addresses() if not a.startswith("127.")] or ["127.0.0.1"]
    return [socket.gethostbyname(host)]


class Advertiser:
    """Registers both services on ``start`` and unregisters them on ``stop``."""

    def __init__(self, name: str, web: tuple[str, int], osc: tuple[str, int] | None) -> None:
        self.name, self.web, self.osc = name, web, osc
        self.zeroconf: Any = None
        self.infos: list[Any] = []

    def start(self) -> "Advertiser":
        """Announce (blocks briefly while zeroconf probes the names)."""
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        addresses = _addresses(self.web[0])
        interfaces = addresses if self.web[0] not in ("0.0.0.0", "") else None
        self.zeroconf = (Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only) if interfaces
                         else Zeroconf(ip_version=IPVersion.V4Only))
        packed = [socket.inet_aton(a) for a in addresses]
        host = f"{self.name}-{socket.gethostname()}.local.".replace("_", "-")
        self.infos = [ServiceInfo(OSCQUERY_TYPE, f"{self.name}.{OSCQUERY_TYPE}", port=self.web[1],
                                  addresses=packed, server=host, properties={"txtvers": "1"})]
        if self.osc is not None:
            self.infos.append(ServiceInfo(OSC_TYPE, f"{self.name}.{OSC_TYPE}", port=self.osc[1],
                                          addresses=packed, server=host, properties={"txtvers": "1"}))
        for info in self.infos:
            self.zeroconf.register_service(info, allow_name_change=True)
        log.info("advertised %s on %s", ", ".join(i.name for i in self.infos), ", ".join(addresses))
        return self

    def stop(self) -> None:
        """Unregister and close (idempotent)."""
        if self.zeroconf is None:
            return
        for info in self.infos:
            try:
                self.zeroconf.unregister_service(info)
            except Exception as err:  # noqa: BLE001 - closing anyway
                log.debug("zeroconf unregister: %s", err)
        self.zeroconf.close()
        self.zeroconf = None
