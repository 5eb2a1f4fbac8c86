"""A real JACK MIDI client drives riff-bridge's virtual MIDI input (python-rtmidi, JACK API).

The sender is a jack.Client whose process callback writes queued events to its MIDI output,
connected to ``riff-bridge-midi:midi_in``: CCs, program changes, notes and clock reach the
mapped parameters, and MIDI learn completes a round trip with an OSC peer.
"""

from __future__ import annotations

import collections
from typing import Any, Iterator

import pytest
from control_fixtures import OscPeer, wait_until

from bridge.control.presets import LEARNED_NAME, PresetStore
from bridge.state import StateStore

pytestmark = pytest.mark.jack


class JackMidiSender:
    """A JACK client with one MIDI output; ``send`` queues raw events for the next periods."""

    def __init__(self, target: str) -> None:
        import jack

        self.queue: collections.deque[bytes] = collections.deque()
        self.client = jack.Client("riff-test-midi-sender", no_start_server=True)
        self.port = self.client.midi_outports.register("out")
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(self.port, target)

    def _process(self, frames: int) -> None:
        self.port.clear_buffer()
        offset = 0
        while self.queue and offset < frames:
            self.port.write_midi_event(offset, self.queue.popleft())
            offset += 1

    def send(self, *events: bytes) -> None:
        self.queue.extend(events)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


@pytest.fixture
def midi_rig(jack_server: Any, preset_store: PresetStore) -> Iterator[Any]:
    """ControlSurfaces with a virtual JACK MIDI input, an OSC port, and a connected sender."""
    from bridge.control.surfaces import VIRTUAL, ControlSurfaces

    clock: list[Any] = []
    surfaces = ControlSurfaces(StateStore(), presets=preset_store, osc_port=0, midi=VIRTUAL,
                               midi_api="jack", midi_clock=clock.append, preset="default",
                               controller="generic-8knob")
    surfaces.start()
    assert surfaces.midi_input is not None, "virtual JACK MIDI port did not open"
    sender = JackMidiSender(surfaces.midi_input.port_label)
    yield surfaces, sender, clock
    sender.close()
    surfaces.stop()


def test_cc_program_change_notes_and_clock_reach_the_state(midi_rig: Any) -> None:
    surfaces, sender, clock = midi_rig
    store = surfaces.store
    assert surfaces.midi_input.port_label == "riff-bridge-midi:midi_in"
    sender.send(bytes([0xB0, 21, 127]), bytes([0xB3, 24, 0]))  # alpha, steps (any channel)
    assert wait_until(lambda: store.snapshot().alpha == 1.0 and store.snapshot().steps == 10)
    sender.send(bytes([0xC0, 2]))  # program 2: techno
    assert wait_until(lambda: store.snapshot().bpm == 128.0)
    sender.send(bytes([0x99, 37, 100]), bytes([0x89, 37, 0]))  # pad 2 -> slot 2 on side B
    assert wait_until(lambda: store.snapshot().prompt_b == "acid techno with a squelchy 303 bassline")
    seed = store.snapshot().seed_a
    sender.send(bytes([0x90, 44, 90]))  # pad 9: new seed on A
    assert wait_until(lambda: store.snapshot().seed_a != seed)
    sender.send(bytes([0xFA]), bytes([0xF8]), bytes([0xF8]), bytes([0xFC]))
    assert wait_until(lambda: [m.type for m in clock] == ["start", "clock", "clock", "stop"])


def test_midi_learn_round_trip_over_osc_and_jack(midi_rig: Any, preset_store: PresetStore) -> None:
    surfaces, sender, _ = midi_rig
    peer = OscPeer(surfaces.osc.address)
    peer.send("/riff/midi/learn", "denoising")
    peer.send("/riff/ping")
    peer.expect("/riff/pong")
    sender.send(bytes([0xB4, 99, 10]))  # channel 5, CC 99
    assert peer.expect("/riff/midi/learned").args == ("denoising", 5, 99)
    assert surfaces.store.snapshot().denoising == 0.75  # the learning move changes nothing
    sender.send(bytes([0xB4, 99, 127]))
    assert wait_until(lambda: surfaces.store.snapshot().denoising == 1.0)
    saved = PresetStore(preset_store.user_dir).load(LEARNED_NAME).controller
    assert [(b.param, b.channel, b.cc) for b in saved.cc] == [("denoising", 5, 99)]
    peer.send("/riff/midi/learn", "prompt_a")
    assert "param" in peer.expect("/riff/error").args[1]
    peer.close()


def test_named_port_that_does_not_exist_is_an_error(jack_server: Any, preset_store: PresetStore) -> None:
    from bridge.control.midi_port import MidiPortError
    from bridge.control.surfaces import ControlSurfaces

    surfaces = ControlSurfaces(StateStore(), presets=preset_store, osc_port=None,
                               midi="no such port", midi_api="jack")
    with pytest.raises(MidiPortError, match="no such port"):
        surfaces.start()
    surfaces.stop()
