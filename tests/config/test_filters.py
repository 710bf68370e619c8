"""`filters:` and `compensate:` in a config: each mistake named at its line and column, good chains typed
and printed back as the file spells them."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from bridge.cli.main import main
from bridge.config import load_config
from bridge.config import filters as spec

HEAD = """\
version: 1
device: {id: pi1, driver: memory}
nats: {servers: ["nats://127.0.0.1:4222"]}
publications:
"""


def publication(sensor: str, body: str) -> str:
    return HEAD + f"  - subject: s.{sensor}\n    sensor: {sensor}\n    interval: 1s\n" + textwrap.indent(
        textwrap.dedent(body), "    ")


def errors(tmp_path, capsys, text: str) -> list[str]:
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    return [line.replace(str(path), "FILE", 1) for line in capsys.readouterr().err.splitlines()]


# line and column are those of the key or value named; a filter's name starts in column 9.
CASES = [
    ("unknown filter", "temperature", "filters:\n  - moving_avg: {window: 3}\n",
     "FILE:9:9: error: publications[0].filters[0].moving_avg: unknown key 'moving_avg'; did you mean 'moving_average'?"),
    ("window 0", "temperature", "filters:\n  - median: {window: 0}\n",
     "FILE:9:26: error: publications[0].filters[0].median.window: must be at least 1, got 0"),
    ("window over 100", "humidity", "filters:\n  - moving_average: {window: 101}\n",
     "FILE:9:34: error: publications[0].filters[0].moving_average.window: must be at most 100, got 101"),
    ("calibrate points not increasing", "temperature", "filters:\n  - calibrate_linear: [[10, 9], [5, 6]]\n",
     "FILE:9:38: error: publications[0].filters[0].calibrate_linear[1][0]: measured values must increase from "
     "point to point: 5 follows 10"),
    ("calibrate points repeating a measured value", "temperature", "filters:\n  - calibrate_linear: [[0, 0], [10, 9], [10, 11]]\n",
     "FILE:9:46: error: publications[0].filters[0].calibrate_linear[2][0]: measured values must increase from "
     "point to point: 10 follows 10"),
    ("one calibrate point", "temperature", "filters:\n  - calibrate_linear: [[10, 9]]\n",
     "FILE:9:27: error: publications[0].filters[0].calibrate_linear: needs at least 2 entries"),
    ("a filter on the joystick", "joystick", "filters:\n  - round: 1\n",
     "FILE:8:5: error: publications[0].filters: the joystick sends events, not numbers: filters do not apply; "
     "remove 'filters'"),
    ("a vector offset on a number", "pressure", "filters:\n  - offset: {x: 1}\n",
     "FILE:9:9: error: publications[0].filters[0].offset: a mapping of components applies to a vector sensor; "
     "'pressure' is one number: give offset a number"),
    ("a component the sensor lacks", "accelerometer", "filters:\n  - multiply: {yaw: 2}\n",
     "FILE:9:20: error: publications[0].filters[0].multiply.yaw: 'accelerometer' has no component 'yaw'; "
     "it has x, y, z"),
    ("calibrate_linear on a vector", "compass", "filters:\n  - calibrate_linear: [[0, 0], [1, 1]]\n",
     "FILE:9:9: error: publications[0].filters[0].calibrate_linear: calibrate_linear maps one measured number to a "
     "true one; 'compass' is a vector: use offset or multiply with a mapping per component"),
    ("averaging angles", "orientation", "filters:\n  - moving_average: {}\n",
     "FILE:9:9: error: publications[0].filters[0].moving_average: moving_average would average angles that wrap "
     "at 360° (359° and 1° average to 180°); use delta or throttle on orientation"),
    ("send_first_at after send_every", "humidity", "filters:\n  - moving_average: {send_every: 2, send_first_at: 3}\n",
     "FILE:9:41: error: publications[0].filters[0].moving_average.send_first_at: send_first_at (3) must be at most "
     "send_every (2)"),
    ("clamp without bounds", "humidity", "filters:\n  - clamp: {ignore_out_of_range: true}\n",
     "FILE:9:9: error: publications[0].filters[0].clamp: clamp needs min, max or both"),
    ("clamp max below min", "humidity", "filters:\n  - clamp: {min: 5, max: 1}\n",
     "FILE:9:25: error: publications[0].filters[0].clamp.max: max (1) must be at least min (5)"),
    ("two filters in one entry", "humidity", "filters:\n  - {round: 1, delta: 2}\n",
     "FILE:9:9: error: publications[0].filters[0]: each entry is one filter, such as '- offset: -0.5', got a mapping"),
    ("delta 0", "humidity", "filters:\n  - delta: 0\n",
     "FILE:9:16: error: publications[0].filters[0].delta: must be more than 0, got 0"),
    ("nine filters", "humidity", "filters: [round: 1, round: 1, round: 1, round: 1, round: 1, round: 1, round: 1, "
                                 "round: 1, round: 1]\n",
     "FILE:8:14: error: publications[0].filters: at most 8 entries, got 9"),
    ("compensate on humidity", "humidity", "compensate: cpu\n",
     "FILE:8:5: error: publications[0].compensate: compensate corrects the Sense HAT's temperature; it does not "
     "apply to 'humidity' (use it on sensor: temperature)"),
    ("compensate method unknown", "temperature", "compensate: gpu\n",
     "FILE:8:17: error: publications[0].compensate: expected 'cpu' or a mapping such as {method: cpu, factor: 1.5, "
     "samples: 3}, got a string 'gpu'"),
]


@pytest.mark.parametrize("sensor, body, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_chain_is_named_at_its_line_and_column(sensor, body, expected, tmp_path, capsys):
    text = publication(sensor, body)
    if sensor == "joystick":
        text = text.replace("    interval: 1s\n", "")
        expected = expected.replace("FILE:8:", "FILE:7:")
    assert expected in errors(tmp_path, capsys, text)


GOOD = publication("temperature", """\
    compensate: {method: cpu, factor: 2}
    filters:
      - offset: -0.5
      - multiply: 1.01
      - calibrate_linear: [[0, -0.3], [30, 29.1]]
      - median: {window: 3}
      - exponential_moving_average: {alpha: 0.2, send_every: 2}
      - clamp: {min: -40, max: 85, ignore_out_of_range: true}
      - throttle: 1m
      - round: 1
    """) + "  - {subject: s.a, sensor: accelerometer, interval: 1s, filters: [offset: {z: -1}, delta: 0.1]}\n"


def test_a_good_chain_becomes_typed_filters_in_order(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(GOOD)
    temperature, accelerometer = load_config(path).publications
    assert temperature.compensate == spec.CompensateConfig(method="cpu", factor=2.0, samples=3)
    assert temperature.filters == (
        spec.Offset(-0.5), spec.Multiply(1.01), spec.CalibrateLinear(((0.0, -0.3), (30.0, 29.1))),
        spec.Median(window=3), spec.ExponentialMovingAverage(alpha=0.2, send_every=2),
        spec.Clamp(min=-40.0, max=85.0, ignore_out_of_range=True), spec.Throttle(60.0), spec.Round(1))
    assert accelerometer.filters == (spec.Offset((("z", -1.0),)), spec.Delta(0.1))
    assert accelerometer.compensate is None


def test_print_spells_the_chain_as_the_file_does_and_validates_again(tmp_path, capsys):
    path = tmp_path / "bridge.yml"
    path.write_text(GOOD)
    assert main(["validate", "--print", str(path)]) == 0
    printed = capsys.readouterr().out
    publications = yaml.safe_load(printed)["publications"]
    assert publications[0]["filters"][6] == {"throttle": "1m"}
    assert publications[1]["filters"] == [{"offset": {"z": -1.0}}, {"delta": 0.1}]
    again = tmp_path / "printed.yml"
    again.write_text(printed)
    assert load_config(again).publications == load_config(path).publications


def test_a_clamp_to_one_value_is_allowed(tmp_path):
    path = tmp_path / "bridge.yml"
    path.write_text(publication("humidity", "filters:\n  - clamp: {min: 50, max: 50}\n"))
    assert load_config(path).publications[0].filters == (spec.Clamp(min=50.0, max=50.0),)
