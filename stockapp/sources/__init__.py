"""Where quotes come from: the simulator, Alpha Vantage, CSV files. Each yields
:class:`~stockapp.models.Quote` objects; :mod:`.factory` opens the one the command line names,
and :mod:`.producer` publishes quotes to Kafka."""
