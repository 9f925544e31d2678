from stockapp.web.ratelimit import RateLimiter, cost


def test_costs():
    assert cost("/api/candles/AAPL", {}) == 1
    assert cost("/api/candles/AAPL", {"limit": "500"}) == 1
    assert cost("/api/candles/AAPL", {"limit": "501"}) == 2
    assert cost("/api/candles/AAPL", {"limit": "5000"}) == 10
    assert cost("/api/candles/AAPL", {"limit": "999999"}) == 10  # refused later as a bad request
    assert cost("/api/candles/AAPL", {"limit": "x"}) == 1
    assert cost("/api/symbols", {}) == 1
    assert cost("/api/quote/AAPL", {}) == 1
    assert cost("/api/meta", {}) == 0
    assert cost("/api/openapi.json", {}) == 0


def test_buckets_refill_and_say_how_long_to_wait():
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=10.0, clock=lambda: now[0])
    assert limiter.take("a", 10) == 0  # the burst
    assert limiter.take("a", 1) == 0.5  # empty: half a second for one token at 2/s
    assert limiter.take("b", 4) == 0  # another address has its own bucket
    now[0] += 2.0
    assert limiter.take("a", 4) == 0  # refilled 4 tokens in 2 s
    assert limiter.take("a", 10) == 5.0  # never more than the burst, and a refusal takes none
    now[0] += 100
    assert limiter.take("a", 10) == 0


def test_memory_is_bounded_by_the_most_recent_clients():
    limiter = RateLimiter(rate=1.0, burst=1.0, clock=lambda: 0.0, max_clients=3)
    for client in "abcde":
        limiter.take(client, 1)
    assert list(limiter.buckets) == ["c", "d", "e"]
    assert limiter.take("a", 1) == 0  # forgotten: a fresh bucket
