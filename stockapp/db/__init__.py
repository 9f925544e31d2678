"""Cassandra schema: versioned CQL files and the runner that applies them."""
