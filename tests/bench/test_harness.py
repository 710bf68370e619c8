"""bench/: the arithmetic of a row (alternation, per-round ratios, CPU per message) and the
registry's targets and goals as the table shows them."""

from __future__ import annotations

import pytest

from bench import BENCHMARKS, Figure
from bench.__main__ import make_row, print_table
from bench.common import alternate, compare_rounds, cpu_us_per_message, rate_and_cpu_row
from bridge.testing.procfs import CLOCK_TICKS_PER_SECOND


def test_rounds_alternate_and_the_warm_up_pair_is_dropped():
    calls = []

    def side(name):
        def measure():
            calls.append(name)
            return f"{name}{len(calls)}"
        return measure

    ours, baseline = alternate(2, side("ours"), side("baseline"), warm_up=1)
    assert calls == ["ours", "baseline"] * 3
    assert (ours, baseline) == (["ours3", "ours5"], ["baseline4", "baseline6"])


def test_the_ratio_is_the_median_of_the_per_round_ratios():
    # Round 2 ran while a neighbour loaded the box: both sides halved, the round's ratio did not.
    our_median, baseline_median, ratio = compare_rounds([100.0, 50.0, 90.0], [80.0, 40.0, 100.0])
    assert (our_median, baseline_median) == (90.0, 80.0)
    assert ratio == 1.25  # rounds 1.25, 1.25, 0.9; the ratio of the medians would be 1.125


def test_rounds_that_do_not_pair_up_are_refused():
    with pytest.raises(ValueError, match="do not pair up"):
        compare_rounds([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="do not pair up"):
        compare_rounds([], [])


def test_cpu_per_message_converts_clock_ticks():
    one_second = CLOCK_TICKS_PER_SECOND
    assert cpu_us_per_message(one_second, 100_000) == pytest.approx(10.0)
    assert cpu_us_per_message(one_second // 2, 50_000) == pytest.approx(10.0)


def test_a_throughput_row_carries_both_sides_cpu():
    ticks = CLOCK_TICKS_PER_SECOND  # one CPU-second a round
    ours = [{"rate": 1000.0, "messages": 100_000, "cpu_ticks": ticks},
            {"rate": 3000.0, "messages": 200_000, "cpu_ticks": ticks}]
    baseline = [{"rate": 500.0, "messages": 100_000, "cpu_ticks": 2 * ticks},
                {"rate": 1000.0, "messages": 100_000, "cpu_ticks": ticks}]
    row = rate_and_cpu_row(ours, baseline)
    assert (row["ours"], row["baseline"], row["ratio"]) == (2000, 750, 2.5)  # rounds 2 and 3
    assert row["ours_cpu_rounds"] == [10.0, 5.0]
    assert row["baseline_cpu_rounds"] == [20.0, 10.0]
    assert (row["ours_cpu_us_per_msg"], row["baseline_cpu_us_per_msg"], row["cpu_ratio"]) == (7.5, 15.0, 0.5)
    assert row["cpu_ticks_min"] == ticks


def test_a_row_takes_the_modules_ratio_and_the_registrys_target_and_goal():
    figure = Figure("device_cpu_per_msg", "lower", 1.0, 0.67)
    row = make_row(figure, {"ours": 12.0, "baseline": 10.0, "unit": "CPU µs/msg", "ratio": 1.3333, "extra": 1})
    assert row == {"name": "device_cpu_per_msg", "ours": 12.0, "baseline": 10.0, "unit": "CPU µs/msg",
                   "ratio": 1.33, "target": 1.0, "goal": 0.67, "extra": 1}
    assert make_row(figure, {"ours": 12.0, "baseline": 10.0, "unit": "x"})["ratio"] == 1.2
    assert make_row(figure, {"ours": 12.0, "baseline": None, "unit": "x"})["ratio"] is None


def test_a_row_without_its_keys_is_refused():
    with pytest.raises(ValueError, match="did not return unit"):
        make_row(Figure("rss", "lower", 1.35), {"ours": 1, "baseline": 1})


def test_the_table_says_whether_target_and_goal_are_reached(capsys):
    rows = [
        (make_row(Figure("device_throughput", "higher", 1.2, 1.5), {"ours": 13, "baseline": 10, "unit": "msgs/s"}),
         "higher"),
        (make_row(Figure("device_cpu_per_msg", "lower", 1.0, 0.67), {"ours": 6, "baseline": 10, "unit": "µs"}),
         "lower"),
        (make_row(Figure("validate", "lower", 0.8), {"ours": 0.9, "baseline": None, "unit": "s"}), "lower"),
    ]
    print_table(rows)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].split() == ["figure", "ours", "baseline", "unit", "ratio", "target", "met", "goal", "reached"]
    assert lines[1].split()[-7:] == ["1.3", "≥", "1.2", "yes", "≥", "1.5", "no"]
    assert lines[2].split()[-7:] == ["0.6", "≤", "1", "yes", "≤", "0.67", "yes"]
    assert lines[3].split()[-5:] == ["≤", "0.8", "NO", "-", "-"]


def test_every_goal_lies_beyond_its_target():
    for figure in BENCHMARKS:
        assert figure.better in ("higher", "lower"), figure
        if figure.goal is not None:
            assert figure.goal >= figure.target if figure.better == "higher" else figure.goal <= figure.target, figure
