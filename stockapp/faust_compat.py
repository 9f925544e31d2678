"""Every use of Faust's private internals, in one place.

Checked against faust-streaming 0.15.3 (pinned in setup.cfg). When Faust is upgraded, this is
the module to re-read against its source; nothing else in stockapp touches an underscore name
of Faust's.
"""

from __future__ import annotations

from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from stockapp.partitioning import partition_for

ROCKSDB_SCHEME = "keyrocksdb"


class KeyPartitionedRocksDBStore(RocksDBStore):
    """A RocksDB table store that files each key under the key's own partition.

    Faust's RocksDB store puts a written key into the database of the partition of the event
    being processed, and asserts that there is one. A table written with
    ``use_partitioner=True`` (the symbol-state table, written once per batch and from a timer)
    has no such event, or one from another partition: keys would land in the wrong partition's
    database and, after a rebalance, stale copies would shadow recovered ones. Reads already
    search every partition for such tables; only writes need the key's partition, which is the
    one the producer's partitioner (murmur2, as Kafka's Java client) chose for the changelog
    record. Overrides the private ``_set`` and uses ``_key_index`` / ``_db_for_partition``.
    """

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = partition_for(key, self.table.partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


STORES.aliases[ROCKSDB_SCHEME] = f"{__name__}:KeyPartitionedRocksDBStore"


def rocksdb_options(megabytes: int) -> dict[str, int]:
    """Faust's RocksDB options (``RocksDBOptions`` fields) for a database of at most about
    ``megabytes`` of memory: half block cache, half two write buffers."""
    mib = 1024 * 1024
    return {
        "write_buffer_size": max(1, megabytes // 4) * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": max(1, megabytes // 2) * mib,
        "block_cache_compressed_size": max(1, megabytes // 8) * mib,
    }


def committed_offset(app: Any, tp: TP) -> int | None:
    """The committed offset the consumer sought to at start (or last committed) for ``tp``.

    Faust keeps it in the private ``Consumer._committed_offset``; there is no public reader.
    """
    return app.consumer._committed_offset.get(tp)


def producer_client(app: Any) -> Any:
    """The aiokafka client under the app's producer (``Producer._ensure_producer``), for a
    metadata round trip in the readiness check."""
    return app.producer._ensure_producer().client
