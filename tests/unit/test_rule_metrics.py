"""Signals by rule on /metrics and /stats: a series per rule in force, none for a rule that
was deleted (they used to stay for every rule name ever used, a label set without bound)."""

from __future__ import annotations

from collections import Counter

import pytest

from stockapp.agents import quotes, rules
from stockapp.processing import QuoteProcessor
from stockapp.settings import load_settings
from stockapp.tables.signals import BUILT_IN, parse_rule
from stockapp.tables.signals.book import RuleBook
from tests.fakes import Effects, Table


def rule(name: str):
    return parse_rule(
        {"name": name, "kind": "breakout_up", "lookback": 2, "interval": "5m"}, ["5m"]
    )


@pytest.fixture
def worker(monkeypatch):
    """A processor that fired signals of two users' rules and a built-in one."""
    effects = Effects()
    proc = QuoteProcessor(load_settings(), Table(effects), effects, effects.publish)
    proc.signals_by_rule = Counter({"kept": 3, "gone": 2, "golden_cross": 1})
    monkeypatch.setattr(quotes.app, "processor", proc)
    monkeypatch.setattr(rules.app, "rule_book", RuleBook(BUILT_IN, [rule("kept"), rule("gone")]))
    stored = [rule("kept")]  # "gone" was deleted through some worker's API

    async def load():
        return list(stored)

    monkeypatch.setattr(rules.app.rule_store, "load", load)
    return proc


def fired_series() -> dict[str, float]:
    from stockapp.web.metrics import collector

    [family] = [f for f in collector.collect() if f.name == "stockapp_signals"]
    return {s.labels["rule"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_a_deleted_rule_leaves_metrics_and_stats_at_the_next_reload(worker):
    assert fired_series() == {"kept": 3, "gone": 2, "golden_cross": 1}
    assert await rules.reload_rules()
    assert fired_series() == {"kept": 3, "golden_cross": 1}
    assert rules.fired_in_force() == {"kept": 3, "golden_cross": 1}  # /stats signals.fired
    assert "gone" not in worker.signals_by_rule  # the count itself is dropped: memory too


async def test_a_firing_counted_after_the_reload_shows_only_while_its_rule_is_in_force(worker):
    await rules.reload_rules()
    # A batch that began with the old rules ends after the reload and counts "gone" again.
    worker.signals_by_rule.update(["gone"])
    assert "gone" not in fired_series() and "gone" not in rules.fired_in_force()
