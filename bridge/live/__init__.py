"""Live playback: JACK client, tempo sources, bar-aligned clip switching, generation ahead.

Public API (import from the modules; this package imports nothing heavy):

- :class:`bridge.live.engine.LiveEngine` ``(store, engine, output, options, on_midi, on_error)``
  with ``start()``/``stop()`` (or ``with``), ``metrics()`` -> :class:`~bridge.live.metrics.LiveMetrics`,
  ``boundaries()`` -> loop starts, ``tempo()``, ``midi`` queue; :class:`~bridge.live.engine.LiveOptions`.
- Outputs: :class:`bridge.live.jackoutput.JackOutput` (the JACK client) and
  :class:`bridge.live.offline.OfflineOutput` (same block logic in memory, for tests).
- :class:`bridge.live.server.JackServer` / :func:`~bridge.live.server.server_running`: a private jackd.

Inside: ``core.c``/``core.h`` (the native realtime core: bar grid, MIDI clock, timebase,
loop player, crossfades, input capture; no Python in JACK's thread) and ``core`` (its Python
side), ``player`` (the worker's handover to the core), ``timebase`` (our own BBT),
``tempo`` (which tempo is in force), ``worker``/``walk``/``refit`` (generation ahead),
``loop``/``crossfade`` (playable clips), ``metrics``, ``priority`` (the model process's).
"""
