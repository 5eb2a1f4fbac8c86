"""riff-bridge-mini: a small text-to-spectrogram model of our own, trained on synthesized music.

Modules: :mod:`~bridge.mini.vocabulary` (caption words and the tokenizer), :mod:`~bridge.mini.composer`
(procedural MIDI loops), :mod:`~bridge.mini.dataset` (rendered, captioned spectrogram images),
:mod:`~bridge.mini.architecture` (the diffusers components), :mod:`~bridge.mini.training` and
:mod:`~bridge.mini.evaluation`.
"""
