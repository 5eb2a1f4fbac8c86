"""riff-bridge: Riffusion-style generative loops into the DAW."""

__version__ = "0.1.0"
