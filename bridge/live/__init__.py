"""Live playback: JACK client, tempo sources, bar-aligned clip switching, generation ahead."""
