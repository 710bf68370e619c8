"""Each filter against hand-computed values, on a `task.Clock` where time matters, and properties of whole chains."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task

from bridge.config import filters as spec
from bridge.telemetry.filters import FilterChain, change


def outputs(configs, values, sensor="temperature", clock=None, step=1.0):
    """What the chain passes on for each input, None where it drops one."""
    clock = clock or task.Clock()
    chain = FilterChain(configs, sensor)
    out = []
    for value in values:
        out.append(chain.feed(value, clock.seconds()))
        clock.advance(step)
    return out


def test_offset_and_multiply_in_order():
    assert outputs([spec.Offset(-0.5), spec.Multiply(2.0)], [10.0, 20.0]) == [19.0, 39.0]
    assert outputs([spec.Multiply(2.0), spec.Offset(-0.5)], [10.0]) == [19.5]


def test_calibrate_linear_two_points_is_the_line_through_them_also_outside():
    line = [spec.CalibrateLinear(((0.0, -0.3), (30.0, 29.1)))]  # true = 0.98 * measured - 0.3
    assert outputs(line, [0.0, 15.0, 30.0, -10.0, 40.0]) == pytest.approx([-0.3, 14.4, 29.1, -10.1, 38.9])


def test_calibrate_linear_three_points_is_piecewise_and_extrapolates_the_end_segments():
    pieces = [spec.CalibrateLinear(((0.0, 0.0), (10.0, 20.0), (20.0, 25.0)))]  # slope 2, then 0.5
    assert outputs(pieces, [5.0, 10.0, 15.0, -5.0, 30.0]) == pytest.approx([10.0, 20.0, 22.5, -10.0, 30.0])


def test_moving_average_over_a_filling_then_sliding_window():
    assert outputs([spec.MovingAverage(window=3)], [3.0, 6.0, 9.0, 12.0, 0.0]) == pytest.approx(
        [3.0, 4.5, 6.0, 9.0, 7.0])


def test_moving_average_window_of_one_passes_values_through():
    assert outputs([spec.MovingAverage(window=1)], [3.0, 6.0]) == [3.0, 6.0]


def test_send_every_sends_the_first_then_every_nth():
    # ESPHome: send_first_at 1 sends the first input at once, then every send_every-th.
    got = outputs([spec.MovingAverage(window=2, send_every=3)], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert got == [1.0, None, None, 3.5, None, None, 6.5]


def test_send_first_at_delays_the_first_output():
    got = outputs([spec.MovingAverage(window=5, send_every=3, send_first_at=3)], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert got == [None, None, 2.0, None, None, 4.0]


def test_median_drops_a_single_spike_and_averages_the_middle_pair_of_an_even_window():
    assert outputs([spec.Median(window=3)], [20.0, 21.0, 95.0, 22.0, 21.5]) == [20.0, 20.5, 21.0, 22.0, 22.0]


def test_median_send_every():
    assert outputs([spec.Median(window=3, send_every=2)], [5.0, 1.0, 3.0, 9.0]) == [5.0, None, 3.0, None]


def test_exponential_moving_average_starts_at_the_first_value():
    got = outputs([spec.ExponentialMovingAverage(alpha=0.25)], [10.0, 20.0, 20.0])
    assert got == pytest.approx([10.0, 12.5, 14.375])


def test_exponential_moving_average_keeps_averaging_the_inputs_it_does_not_send():
    got = outputs([spec.ExponentialMovingAverage(alpha=0.5, send_every=2)], [10.0, 20.0, 20.0, 40.0])
    assert got == pytest.approx([10.0, None, 17.5, None])


def test_clamp_limits_or_with_ignore_out_of_range_drops():
    assert outputs([spec.Clamp(min=0.0, max=10.0)], [-5.0, 5.0, 15.0]) == [0.0, 5.0, 10.0]
    assert outputs([spec.Clamp(min=0.0, max=10.0, ignore_out_of_range=True)], [-5.0, 5.0, 15.0]) == [None, 5.0, None]
    assert outputs([spec.Clamp(max=10.0)], [-1e6, 11.0]) == [-1e6, 10.0]


def test_round():
    assert outputs([spec.Round(1)], [21.26, 21.24]) == [21.3, 21.2]
    assert outputs([spec.Round(0)], [21.6]) == [22.0]


def test_throttle_on_the_clock():
    clock = task.Clock()
    chain = FilterChain([spec.Throttle(10.0)], "temperature")
    got = []
    for at in (0, 4, 9.9, 10, 15, 20.5):
        clock.advance(at - clock.seconds())
        got.append(chain.feed(float(at), clock.seconds()))
    assert got == [0.0, None, None, 10.0, None, 20.5]


def test_delta_passes_a_move_of_at_least_the_amount_from_the_last_passed_value():
    # 20.3 is 0.3 from 20.0 but 20.6 is measured from 20.0 (the last passed), not from 20.3.
    assert outputs([spec.Delta(0.5)], [20.0, 20.3, 20.6, 20.2, 20.0]) == [20.0, None, 20.6, None, 20.0]


def test_a_dropping_filter_stops_the_rest_of_the_chain_from_seeing_the_value():
    chain = [spec.Clamp(max=30.0, ignore_out_of_range=True), spec.MovingAverage(window=3)]
    assert outputs(chain, [10.0, 99.0, 20.0]) == [10.0, None, 15.0]


def test_vectors_filter_each_component_with_its_own_window():
    readings = [{"x": 0.0, "y": 10.0}, {"x": 2.0, "y": 20.0}]
    got = outputs([spec.MovingAverage(window=2), spec.Offset((("x", 1.0),))], readings, sensor="accelerometer")
    assert got == [{"x": 1.0, "y": 10.0}, {"x": 2.0, "y": 15.0}]


def test_a_vector_offset_or_multiply_number_applies_to_every_component():
    got = outputs([spec.Multiply(2.0)], [{"x": 1.0, "y": -2.0, "z": 0.5}], sensor="gyroscope")
    assert got == [{"x": 2.0, "y": -4.0, "z": 1.0}]


def test_a_vector_reading_is_dropped_whole_when_one_component_is_out_of_range():
    chain = FilterChain([spec.Clamp(max=1.5, ignore_out_of_range=True)], "accelerometer")
    assert chain.feed({"x": 1.0, "z": 2.0}, 0.0) is None
    assert chain.feed({"x": 1.0, "z": 1.0}, 1.0) == {"x": 1.0, "z": 1.0}
    assert chain.invalid == 0  # dropped by the filter, not an invalid value


def test_delta_on_a_vector_is_the_length_of_the_change():
    readings = [{"x": 0.0, "y": 0.0}, {"x": 0.3, "y": 0.3}, {"x": 0.3, "y": 0.4}]  # moved 0.42, then 0.5
    assert outputs([spec.Delta(0.5)], readings, sensor="accelerometer") == [readings[0], None, readings[2]]


def test_delta_on_orientation_takes_angles_the_short_way_round():
    assert change({"yaw": 359.0}, {"yaw": 1.0}, angles=True) == pytest.approx(2.0)
    readings = [{"pitch": 0.0, "roll": 0.0, "yaw": 359.5}, {"pitch": 0.0, "roll": 0.0, "yaw": 0.5}]
    assert outputs([spec.Delta(5.0)], readings, sensor="orientation") == [readings[0], None]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": 1.0, "y": math.nan}])
def test_a_nan_or_infinite_input_is_dropped_and_counted(bad):
    chain = FilterChain([spec.MovingAverage(window=3)], "accelerometer" if isinstance(bad, dict) else "temperature")
    assert chain.feed(bad, 0.0) is None
    assert chain.invalid == 1
    assert chain.filters[0].filters == {}  # the window never saw it


def test_an_overflow_inside_the_chain_is_dropped_and_counted():
    chain = FilterChain([spec.Multiply(1e308), spec.MovingAverage(window=2)], "pressure")
    assert chain.feed(10.0, 0.0) is None
    assert chain.invalid == 1
    assert chain.feed(1e-308, 1.0) == pytest.approx(1.0)  # the average never held the infinity


def test_an_average_that_overflows_is_dropped_and_counted():
    chain = FilterChain([spec.MovingAverage(window=2)], "pressure")
    assert chain.feed(1.5e308, 0.0) == 1.5e308
    assert chain.feed(1.5e308, 1.0) is None  # the sum overflows
    assert chain.invalid == 1


numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(min_value=-1e6, max_value=1e6)
filter_configs = st.one_of(
    st.builds(spec.Offset, finite),
    st.builds(spec.Multiply, finite),
    st.builds(lambda a, b, c, d: spec.CalibrateLinear(((a, c), (a + 1 + abs(b), d))), finite, finite, finite, finite),
    st.builds(spec.MovingAverage, st.integers(1, 100), st.integers(1, 5), st.just(1)),
    st.builds(spec.ExponentialMovingAverage, st.floats(0.01, 1.0), st.integers(1, 5), st.just(1)),
    st.builds(spec.Median, st.integers(1, 100), st.integers(1, 5), st.just(1)),
    st.builds(lambda low, width, drop: spec.Clamp(low, low + abs(width), drop), finite, finite, st.booleans()),
    st.builds(spec.Round, st.integers(0, 10)),
    st.builds(spec.Throttle, st.floats(0, 10)),
    st.builds(spec.Delta, st.floats(0.001, 100)),
)


@given(st.lists(filter_configs, max_size=8), st.lists(numbers, max_size=40))
def test_a_chain_never_emits_nan_or_infinity(configs, values):
    for value in outputs(configs, values):
        assert value is None or math.isfinite(value)


@given(st.lists(filter_configs, max_size=7), finite, finite, st.booleans(), st.lists(numbers, max_size=40))
def test_a_chain_ending_in_clamp_respects_its_bounds(configs, low, width, drop, values):
    high = low + abs(width)
    for value in outputs(configs + [spec.Clamp(low, high, drop)], values):
        assert value is None or low <= value <= high


@given(st.lists(filter_configs, max_size=7), st.integers(0, 6), st.lists(finite, max_size=40))
def test_a_chain_ending_in_round_has_at_most_that_many_digits(configs, digits, values):
    for value in outputs(configs + [spec.Round(digits)], values):
        assert value is None or round(value, digits) == value
