"""A publication's value path on a `task.Clock`: compensation, then filters, then the deadband, and `raw`
next to `value` whenever one of them ran."""

from __future__ import annotations

import json
import math

import pytest
from twisted.internet import defer, task

from bridge.config import filters as spec
from bridge.config.model import PublicationConfig
from bridge.runtime.publications import SensorPublication

INPUTS = ("temperature_from_humidity", "temperature_from_pressure", "cpu_temperature")


def make(values, sensor="temperature", interval=1.0, **options):
    """A publication polling `values` in turn every `interval` seconds; returns it, its clock and what it sent."""
    reactor = task.Clock()
    sent = []
    values = list(values)
    many_calls = []

    def read_many(sensors):
        many_calls.append(tuple(sensors))
        inputs = values.pop(0)
        return defer.succeed({name: (value, "°C") for name, value in zip(sensors, inputs)})

    publication = SensorPublication(
        PublicationConfig(subject="s.t", sensor=sensor, interval=interval, **options),
        device_id="pi1",
        read=lambda name: defer.succeed((values.pop(0), "°C")),
        read_many=read_many,
        publish=lambda subject, payload: sent.append(json.loads(payload)),
        reactor=reactor,
        clock=reactor.seconds,
    )
    publication.read_many_calls = many_calls
    return publication, reactor, sent


def poll(publication, reactor, times):
    publication.start()
    for _ in range(times - 1):
        reactor.advance(publication.config.interval)
    publication.stop()


def test_the_document_has_the_filtered_value_and_the_raw_one():
    publication, reactor, sent = make([20.0, 22.0], filters=(spec.Offset(-0.5), spec.MovingAverage(window=2)))
    poll(publication, reactor, 2)
    assert [(body["value"], body["raw"]) for body in sent] == [(19.5, 20.0), (20.5, 22.0)]
    assert sent[0]["unit"] == "°C"


def test_without_filters_or_compensation_there_is_no_raw():
    publication, reactor, sent = make([20.0])
    poll(publication, reactor, 1)
    assert sent[0]["value"] == 20.0 and "raw" not in sent[0]


def test_a_reading_the_filters_drop_is_not_published_and_not_counted_invalid():
    publication, reactor, sent = make([1.0, 2.0, 3.0, 4.0], filters=(spec.Median(window=3, send_every=3),))
    poll(publication, reactor, 4)
    assert [body["value"] for body in sent] == [1.0, 3.0]
    assert publication.info()["published"] == 2 and publication.info()["invalid"] == 0


def test_the_deadband_looks_at_the_filtered_value():
    # raw 20 -> 30 -> 30 averages to 20, 25, 26.67: change 6 holds back the 25 and passes 26.67 (moved 6.67 from 20)
    publication, reactor, sent = make([20.0, 30.0, 30.0], filters=(spec.MovingAverage(window=3),), change=6.0)
    poll(publication, reactor, 3)
    assert [body["value"] for body in sent] == pytest.approx([20.0, 26.6667], abs=1e-3)


def test_throttle_runs_on_the_publications_clock():
    publication, reactor, sent = make([1.0, 2.0, 3.0, 4.0, 5.0], interval=2.0, filters=(spec.Throttle(5.0),))
    poll(publication, reactor, 5)  # readings at 0, 2, 4, 6, 8 s
    assert [body["value"] for body in sent] == [1.0, 4.0]


def test_a_value_a_filter_makes_infinite_is_counted_invalid_not_published():
    publication, reactor, sent = make([1e308, 1.0], filters=(spec.Multiply(10.0),))
    poll(publication, reactor, 2)
    assert [body["value"] for body in sent] == [10.0]
    assert publication.info()["invalid"] == 1


def test_a_compensated_temperature_reads_its_three_inputs_in_one_call_and_keeps_the_mean_as_raw():
    publication, reactor, sent = make([(29.1, 28.1, 40.0), (30.0, 30.0, 30.0)], compensate=spec.CompensateConfig())
    poll(publication, reactor, 2)
    assert publication.read_many_calls == [INPUTS, INPUTS]
    assert sent[0]["value"] == pytest.approx(21.0) and sent[0]["raw"] == pytest.approx(28.6)
    assert sent[1]["value"] == pytest.approx((21.0 + 21.0 + 30.0) / 3) and sent[1]["raw"] == 30.0


def test_compensation_runs_before_the_filters():
    publication, reactor, sent = make([(29.1, 28.1, 40.0)], compensate=spec.CompensateConfig(),
                                      filters=(spec.Offset(1.0), spec.Round(1)))
    poll(publication, reactor, 1)
    assert sent[0]["value"] == 22.0


@pytest.mark.parametrize("inputs", [(29.1, 28.1, math.nan), (0, 28.1, 40.0), (29.1, 0, 40.0)])
def test_a_failed_compensation_input_is_counted_invalid(inputs):
    publication, reactor, sent = make([inputs], compensate=spec.CompensateConfig())
    poll(publication, reactor, 1)
    assert sent == [] and publication.info()["invalid"] == 1


def test_a_replacement_with_the_same_chain_keeps_its_state_a_changed_chain_starts_fresh():
    window = (spec.MovingAverage(window=2),)
    old, reactor, _ = make([10.0], filters=window)
    poll(old, reactor, 1)
    same, reactor, sent = make([20.0], filters=window, change=1.0)  # another config (change), the same chain
    same.adopt_state(old)
    poll(same, reactor, 1)
    assert sent[0]["value"] == 15.0
    changed, reactor, sent = make([20.0], filters=(spec.MovingAverage(window=3),))
    changed.adopt_state(old)
    poll(changed, reactor, 1)
    assert sent[0]["value"] == 20.0


def test_send_current_ignores_the_deadband_but_not_the_filters():
    publication, reactor, sent = make([20.0, 20.1], filters=(spec.Offset(1.0),), change=5.0)
    publication.start()  # publishes 21.0 at once
    publication.send_current()
    publication.stop()
    assert [(body["value"], body["raw"]) for body in sent] == [(21.0, 20.0), (21.1, 20.1)]


def test_a_replacement_with_the_same_compensation_keeps_its_average():
    old, reactor, _ = make([(29.1, 28.1, 40.0)], compensate=spec.CompensateConfig())
    poll(old, reactor, 1)  # the average holds 21, 21, 21
    same, reactor, sent = make([(30.0, 30.0, 30.0)], compensate=spec.CompensateConfig(), change=0.5)
    same.adopt_state(old)
    poll(same, reactor, 1)
    assert sent[0]["value"] == pytest.approx((21.0 + 21.0 + 30.0) / 3)
    changed, reactor, sent = make([(30.0, 30.0, 30.0)], compensate=spec.CompensateConfig(factor=2.0))
    changed.adopt_state(old)
    poll(changed, reactor, 1)
    assert sent[0]["value"] == pytest.approx(30.0)
