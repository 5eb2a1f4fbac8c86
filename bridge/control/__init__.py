"""Control surfaces: OSC server, MIDI mapping and learn, presets.

Surfaces only translate input into calls on :class:`~bridge.control.actions.Actions`, the one
mapping layer over the :class:`~bridge.state.StateStore`. Start here:
:class:`~bridge.control.surfaces.ControlSurfaces`. The protocol is documented in
docs/CONTROL.md, whose tables :mod:`bridge.control.reference` generates.
"""
