"""tools.bench.interleave: the bench's A B A B rounds and the ratios it reports, on injected
numbers (no timing): the order of the calls, the per-round quotient, the median with its
min-max, and the noisy flag at a spread over 20 % or with too few rounds."""
from __future__ import annotations

import pytest

from tools.bench import interleave as bi
from tools.bench.run import _ratio_table


def test_rounds_alternate_between_the_paths():
    calls = []
    values = {"a": iter([10.0, 11.0, 12.0]), "b": iter([5.0, 6.0, 7.0])}

    def path(name):
        return lambda: (calls.append(name), next(values[name]))[1]

    out = bi.interleave({"a": path("a"), "b": path("b")}, rounds=3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert out == {"a": [10.0, 11.0, 12.0], "b": [5.0, 6.0, 7.0]}
    with pytest.raises(ValueError):
        bi.interleave({"a": path("a")}, rounds=0)


def test_ratio_is_the_median_of_per_round_quotients():
    # a load change halves both sides in rounds 3-4: the per-round quotients stay 2.0
    a = [600.0, 600.0, 300.0, 300.0, 600.0]
    b = [300.0, 300.0, 150.0, 150.0, 300.0]
    s = bi.ratio_stats(a, b)
    assert s == {"median": 2.0, "min": 2.0, "max": 2.0, "spread": 0.0, "noisy": False, "rounds": 5}
    # paired rounds, not the quotient of two medians: the load fell while b ran its last rounds
    s = bi.ratio_stats([600.0, 600.0, 300.0, 300.0, 300.0], [300.0, 300.0, 300.0, 150.0, 150.0])
    assert s["median"] == 2.0 and s["min"] == 1.0 and s["noisy"]  # median(a) / median(b) would say 1.0


def test_spread_over_20_percent_is_noisy():
    b = [100.0] * 5
    steady = bi.ratio_stats([300.0, 310.0, 305.0, 295.0, 300.0], b)  # spread 15/300 = 5 %
    assert steady["spread"] == pytest.approx(0.05) and not steady["noisy"]
    edge = bi.ratio_stats([300.0, 330.0, 300.0, 270.0, 300.0], b)  # (3.3 - 2.7) / 3.0 = exactly 20 %
    assert edge["spread"] == pytest.approx(0.2) and not edge["noisy"]
    loud = bi.ratio_stats([300.0, 340.0, 300.0, 270.0, 300.0], b)  # 0.7 / 3.0 = 23 %
    assert loud == {"median": 3.0, "min": 2.7, "max": 3.4, "spread": 0.233, "noisy": True, "rounds": 5}


def test_too_few_rounds_is_noisy_and_bad_input_raises():
    assert bi.ratio_stats([2.0, 2.0], [1.0, 1.0])["noisy"]  # no spread to read from 2 rounds
    for num, den in (([1.0], [1.0, 2.0]), ([], []), ([1.0], [0.0]), ([float("nan")], [1.0])):
        with pytest.raises(ValueError):
            bi.ratio_stats(num, den)


def test_ratio_table_names_the_shipped_path_and_lists_noisy_ones():
    quiet, loud = [100.0] * 5, [100.0, 100.0, 140.0, 100.0, 100.0]
    samples = {"256": {"shipped": [300.0] * 5, "ort_fixed": [300.0] * 5, "torch_kv": quiet},
               "1024": {"shipped": [200.0] * 5, "ort_fixed": [200.0] * 5, "torch_kv": loud}}
    table = _ratio_table(samples, (256, 1024))
    assert table["shipped/torch_kv@256"]["median"] == 3.0 and not table["shipped/torch_kv@256"]["noisy"]
    assert table["shipped/torch_kv@1024"]["noisy"]  # 2.0 vs 1.43 in one round: 40 % spread
    assert "ort_kv/torch_kv@256" not in table  # a path that was not measured has no ratio
    assert bi.noisy_ratios(table) == ["ort_fixed/torch_kv@1024", "shipped/torch_kv@1024"]
    assert bi.median_rate([3.0, 1.0, 2.0]) == 2.0
