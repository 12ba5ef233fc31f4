"""Settings shared by the whole suite."""

from hypothesis import settings

# CI machines are shared and noisy: a slow example is not a failure (timing
# belongs in bench/), and the examples are the same on every run.
settings.register_profile("tcpcam", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("tcpcam")
