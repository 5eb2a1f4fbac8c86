"""Who may ask a worker for clips: loopback by default, a bearer token beyond it.

The worker listens on 127.0.0.1 unless told otherwise; on any other address it refuses to
start without a token (``--token`` or ``RIFF_BRIDGE_TOKEN``). With a token, every call but
``GET /health`` must carry ``Authorization: Bearer <token>``; a missing or wrong one is
refused with a one-line message (HTTP 401). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from bridge.errors import ParameterError

#: Environment variable read when no --token is given (worker and clients alike).
TOKEN_ENV = "RIFF_BRIDGE_TOKEN"


def resolve_token(given: str | None) -> str | None:
    """``given``, else ``$RIFF_BRIDGE_TOKEN``, else None (empty counts as none)."""
    token = given if given is not None else os.environ.get(TOKEN_ENV)
    return token or None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (ParameterError naming --token)."""
    if not is_loopback(host) and not token:
        raise ParameterError("token", f"a token (--token or ${TOKEN_ENV}) to listen on {host}, "
                                      "which is beyond loopback", None)


def refusal(header: str | None, token: str | None) -> str | None:
    """Why an ``Authorization`` header is refused (one line), or None when it is accepted."""
    if not token:
        return None
    if not header:
        return "token: expected 'Authorization: Bearer <token>' (this worker needs --token), got none"
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "token: expected the worker's token, got a wrong one"
    return None
