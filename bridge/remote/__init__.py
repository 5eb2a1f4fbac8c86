"""Generation on another machine: a Ray Serve worker (``riff-bridge worker``) and its client.

- :mod:`bridge.remote.wire`: the frames that travel (JSON header + PNG/audio bytes; no paths);
- :mod:`bridge.remote.access`: loopback by default, a bearer token beyond it;
- :mod:`bridge.remote.generator`: what one replica does with calls (Ray-free);
- :mod:`bridge.remote.batch`: same-shape requests in one UNet batch;
- :mod:`bridge.remote.serving`: the Ray Serve application (imports ray);
- :mod:`bridge.remote.client`: :class:`RemoteEngine`, the DAW side's Engine.
"""
