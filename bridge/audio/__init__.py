"""The spectrogram codec: audio <-> Riffusion mel spectrogram images, in plain torch."""
