"""Measurements of stockapp on the local stack (docs/performance.md, docs/operations.md)."""
