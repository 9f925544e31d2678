"""Binding rows to prepared statements in a third of the driver's time, to the same bytes.

``PreparedStatement.bind`` builds a namedtuple per value to ask a column encryption policy about
it, then serializes through the driver's generic type classes: about 16 us for a raw-quote row,
the largest single cost of a worker storing raw quotes (docs/performance-history.md). For the
column types stockapp writes, given the Python types it passes, a precompiled ``struct`` does
the same encoding; any other value goes through the driver's serializer.
tests/integration/test_cassandra.py checks the bytes against the driver's own ``bind`` over
every column type and edge values.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

Serializer = Callable[[Any, int], bytes]


def _exact(kind: type, encode: Callable[[Any], bytes], fallback: Serializer) -> Serializer:
    """``encode`` for values of exactly ``kind`` (not subclasses: a bool is not a bigint)."""

    def serialize(value: Any, protocol: int) -> bytes:
        return encode(value) if type(value) is kind else fallback(value, protocol)

    return serialize


def _date(fallback: Serializer) -> Serializer:
    pack = struct.Struct(">I").pack
    offset = 2**31  # the protocol's days are unsigned, centred on the epoch

    def serialize(value: Any, protocol: int) -> bytes:
        days = getattr(value, "days_from_epoch", None)
        if type(days) is int:
            return pack(days + offset)
        return fallback(value, protocol)

    return serialize


def _serializer(typename: str, fallback: Serializer) -> Serializer:
    int64 = struct.Struct(">q").pack
    if typename in ("timestamp", "bigint", "counter"):
        return _exact(int, int64, fallback)  # a timestamp as epoch ms
    if typename == "int":
        return _exact(int, struct.Struct(">i").pack, fallback)
    if typename == "double":
        return _exact(float, struct.Struct(">d").pack, fallback)
    if typename in ("varchar", "text", "ascii"):
        return _exact(str, lambda s: s.encode("utf-8"), fallback)
    if typename == "date":
        return _date(fallback)
    return fallback


class RowBinder:
    """``bind(values)`` of a prepared statement, a value for each of its markers."""

    def __init__(self, prepared: Any) -> None:
        from cassandra.query import UNSET_VALUE, BoundStatement

        self.prepared = prepared
        self._bound = BoundStatement
        self._unset = UNSET_VALUE
        meta = getattr(prepared, "column_metadata", None) or ()
        self._fast = bool(meta) and getattr(prepared, "column_encryption_policy", None) is None
        if self._fast:
            self._protocol = prepared.protocol_version
            self._serializers = [_serializer(c.type.typename, c.type.serialize) for c in meta]
            self._routing = set(prepared.routing_key_indexes or ())

    def bind(self, values: Sequence[Any]) -> Any:
        if not self._fast or len(values) != len(self._serializers):
            return self.prepared.bind(values)
        statement = self._bound(self.prepared)
        statement.raw_values = values
        unset, protocol = self._unset, self._protocol
        encoded = [
            v if v is None or v is unset else serialize(v, protocol)
            for v, serialize in zip(values, self._serializers, strict=True)
        ]
        for i in self._routing:  # as the driver's bind: the key must be there to route by
            if encoded[i] is unset:
                raise ValueError("a routing key value cannot be unset")
        statement.values = encoded
        return statement
