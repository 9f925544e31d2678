"""`make bench` reports each contender's median rate without the run py-spy sampled."""

from bench.__main__ import median_rate
from bench.contenders import Timing


def test_the_profiled_run_is_left_out_of_the_median_unless_it_is_the_only_one():
    profiled = Timing(100_000, 25.0, profiled=True)  # 4,000/s under py-spy
    runs = [profiled, Timing(100_000, 16.0), Timing(100_000, 15.0)]  # 6,250 and 6,667/s
    assert median_rate(runs) == (6_250 + 100_000 / 15) / 2
    assert median_rate([profiled]) == 4_000
    assert median_rate([Timing(10, 1.0), Timing(30, 1.0), Timing(20, 1.0)]) == 20
