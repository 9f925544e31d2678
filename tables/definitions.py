"""The Faust tables of the pipeline."""

from __future__ import annotations

from stockapp.app import app
from stockapp.faust_compat import durable_table, rocksdb_options
from stockapp.settings import get_settings

_settings = get_settings()

# symbol (bytes) -> SymbolState.to_dict() as JSON bytes. Written once per batch per symbol, or by
# the timer, so the changelog partition comes from the producer's partitioner on the key rather
# than from the event being processed: with the same key bytes (the symbol) and partition count
# as the quotes topic, that is the symbol's source partition, and recovery after a rebalance brings
# the state to the worker that now reads the symbol's quotes. The key type must be bytes:
# Faust serializes a ``str`` key as JSON (with quotes), which would hash to another partition.
# A DurableTable: the processor waits for each batch's changelog records before the batch's
# offsets can be committed (faust_compat.DurableTable says why Faust's flush is not enough).
symbol_state = durable_table(
    app,
    "symbol-state",
    key_type=bytes,
    # The processor encodes each state itself (JSON, as Faust's codec wrote it before): it knows
    # the record's size before Faust's producer does, and holds it to the state budget.
    value_type=bytes,
    default=None,
    partitions=_settings.quotes_partitions,
    use_partitioner=True,
    help="Forming candles, indicator state, watermark and last offset of each symbol.",
    # RocksDB's memory, per partition's database (Faust's defaults allow 192 MiB of write
    # buffers and a 2 GiB block cache for each, with one database per partition); the
    # memory store ignores these.
    options=rocksdb_options(_settings.rocksdb_memory_mb),
)
