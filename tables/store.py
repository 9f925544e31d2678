"""A RocksDB table store that files each key under the key's own partition.

Faust's RocksDB store puts a written key into the database of the partition of the event being
processed, and asserts that there is one. A table written with ``use_partitioner=True`` (our
symbol-state table, written once per batch and from a timer) has no such event, or one from
another partition: keys would land in the wrong partition's database and, after a rebalance,
stale copies would shadow recovered ones. Reads already search every partition for such tables;
only writes need the key's partition, which is the one the producer's partitioner (murmur2,
as Kafka's Java client) chose for the changelog record.
"""

from __future__ import annotations

from faust.stores import STORES
from faust.stores.rocksdb import Store as RocksDBStore

from stockapp.partitioning import partition_for

SCHEME = "keyrocksdb"


class KeyPartitionedRocksDBStore(RocksDBStore):
    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = partition_for(key, self.table.partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


STORES.aliases[SCHEME] = f"{__name__}:KeyPartitionedRocksDBStore"
