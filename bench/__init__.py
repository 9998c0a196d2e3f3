"""expertkit benchmarks: one entry point per figure (``python -m bench.NAME``)."""
