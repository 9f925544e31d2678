"""Where quotes come from: the simulator, Alpha Vantage, CSV files. Each yields quote dicts
(docs/streaming.md); :mod:`stockapp.sources.producer` publishes them to Kafka."""
