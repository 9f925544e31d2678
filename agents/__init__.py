"""Faust agents: thin wiring from streams to the pure logic in ``tables`` and ``stockapp``."""
