"""Candle.to_dict is spelled out for speed: it must say exactly what dataclasses.asdict says,
for every field, so a field added later cannot be left out of the stored state. ``priced`` is
left out while it is true (the default, and every candle but those of volume-only trades)."""

from dataclasses import asdict

from stockapp.tables.candle import Bar, Candle


def test_to_dict_equals_asdict_and_round_trips():
    candle = Candle.first("AAPL", "1m", 0, 60_000, Bar.tick(5, 10.0, 3.0))
    candle.merge(Bar.tick(7, 11.0, 2.0))
    candle.indicators = {"sma_20": 10.5, "rsi_14": None}
    as_dict = candle.to_dict()
    full = asdict(candle)
    assert full.pop("priced") is True
    assert as_dict == full
    assert list(as_dict) == list(full)
    as_dict["indicators"]["sma_20"] = 0.0  # a copy, not the candle's own dict
    assert candle.indicators["sma_20"] == 10.5
    assert Candle.from_dict(candle.to_dict()) == candle


def test_a_candle_of_volume_only_trades_round_trips():
    candle = Candle.first("AAPL", "1m", 0, 60_000, Bar.tick(5, 10.0, 3.0, priced=False))
    assert candle.to_dict() == asdict(candle)
    assert Candle.from_dict(candle.to_dict()) == candle
