"""Scripts that reproduce and measure skvae: ``python -m benchmarks.NAME``."""
