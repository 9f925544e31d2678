"""Cassandra: opening a session, the row layout, idempotent writes of quotes and candles, and
backfill seeds. (Kafka output topics are written through the Faust app, in stockapp.agents.)"""
