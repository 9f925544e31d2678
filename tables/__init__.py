"""Faust table definitions and the pure candle/indicator state they hold."""
