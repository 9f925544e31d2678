"""Where processed data goes: Cassandra (and Kafka topics, through Faust)."""
