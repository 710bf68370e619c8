"""The heat compensation against Home Assistant's sensehat formula, worked by hand."""

from __future__ import annotations

import pytest

from bridge.config.filters import CompensateConfig
from bridge.telemetry.compensation import CpuCompensation, uncorrected


def test_the_first_correction_is_the_formula():
    # t = (29.1 + 28.1) / 2 = 28.6; 28.6 - (40 - 28.6) / 1.5 = 21.0
    assert CpuCompensation(CompensateConfig()).feed(29.1, 28.1, 40.0) == pytest.approx(21.0)


def test_later_corrections_average_the_last_three_the_first_filling_the_average():
    compensation = CpuCompensation(CompensateConfig())
    compensation.feed(28.0, 28.0, 43.0)  # 28 - 15 / 1.5 = 18
    assert compensation.feed(30.0, 30.0, 30.0) == pytest.approx((18 + 18 + 30) / 3)
    assert compensation.feed(30.0, 30.0, 30.0) == pytest.approx((18 + 30 + 30) / 3)
    assert compensation.feed(30.0, 30.0, 30.0) == pytest.approx(30.0)


def test_factor_and_samples_are_settable():
    compensation = CpuCompensation(CompensateConfig(factor=2.0, samples=1))
    assert compensation.feed(30.0, 30.0, 40.0) == pytest.approx(25.0)
    assert compensation.feed(20.0, 20.0, 20.0) == pytest.approx(20.0)


def test_uncorrected_is_the_mean_of_the_two_sensors():
    assert uncorrected(29.0, 27.0) == 28.0
