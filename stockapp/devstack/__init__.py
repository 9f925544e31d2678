"""The local development stack: real Kafka and Cassandra servers from Maven Central jars.

Users with their own servers never need this package; they point the settings at them.
"""
