"""The browser live view and the OSCQuery server: one asyncio HTTP/WebSocket server (aiohttp).

:class:`~bridge.web.server.WebServer` serves the page (``static/``), its WebSocket (``/live``),
and the OSCQuery protocol at ``/`` (:mod:`bridge.web.oscquery`); :class:`~bridge.web.hub.LiveHub`
fans live state, metrics, clips and errors out to every open page; page commands go through
:mod:`bridge.web.commands`, the same Actions (and validation) that OSC uses.
"""
