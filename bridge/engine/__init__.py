"""Generation: requests in, spectrogram images and bar-exact audio out."""
