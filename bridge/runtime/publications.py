"""`publications:` entries at run time: sensor readings (and joystick events) out on NATS.

A `SensorPublication` is given what it uses: `read(sensor)` (a Deferred of `(value, unit)`, run on
the sensor worker), `read_many(sensors)` (several readings in one worker call, for a compensated
temperature), `publish(subject, payload)` (raises `NatsError` when nothing was sent), a
monotonic `clock` for the filters, deadband and heartbeat, and `record(sensor, value, unit)` for
the latest readings the web view shows.

A reading's way out: raw -> compensation -> filters -> the deadband (the pure `is_due`) -> publish,
with `raw` in the document whenever compensation or a filter ran.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from twisted.internet import task
from twisted.logger import Logger

from bridge.actions import is_valid_reading
from bridge.config.filters import COMPENSATION_INPUTS
from bridge.config.model import PublicationConfig
from bridge.nats import NatsError
from bridge.nats.repeats import RepeatSummary
from bridge.runtime.documents import encode, reading_document
from bridge.telemetry.compensation import CpuCompensation, uncorrected
from bridge.telemetry.filters import FilterChain

log = Logger(namespace="bridge")


def moved_enough(previous: Any, current: Any, threshold: float, angles: bool = False) -> bool:
    """Deadband: has any component of the reading moved by at least `threshold`?

    With `angles` (orientation, in degrees) 359.9 -> 0.1 is a move of 0.2, not 359.8.
    """
    if isinstance(current, dict) and isinstance(previous, dict):
        return any(moved_enough(previous.get(key), value, threshold, angles) for key, value in current.items())
    if isinstance(current, (int, float)) and isinstance(previous, (int, float)):
        moved = abs(current - previous)
        if angles:
            moved %= 360
            moved = min(moved, 360 - moved)
        return moved >= threshold
    return current != previous


def is_due(config: PublicationConfig, value: Any, now: float, last_value: Any, last_published_at: float | None) -> bool:
    """Should this reading be published, given what was last published and when (`now` monotonic)?"""
    if last_published_at is None or last_value is None or config.change is None:
        return True
    if moved_enough(last_value, value, config.change, angles=config.sensor == "orientation"):
        return True
    return config.heartbeat is not None and now - last_published_at >= config.heartbeat


class SensorPublication:
    """One `publications:` entry: polls a sensor onto a subject; for the joystick the bridge's
    poll loop hands each event to `publish`."""

    def __init__(
        self,
        config: PublicationConfig,
        *,
        device_id: str,
        read: Callable[[str], Any],
        publish: Callable[[str, bytes], None],
        reactor,
        clock: Callable[[], float] = time.monotonic,
        record: Callable[[str, Any, str | None], None] = lambda sensor, value, unit: None,
        read_many: Callable[[Sequence[str]], Any] | None = None,
    ):
        self.config = config
        self.device_id = device_id
        self._read = read
        self._publish = publish
        self._reactor = reactor
        self._clock = clock
        self._record = record
        self._read_many = read_many
        self.chain = FilterChain(config.filters, config.sensor)
        self.compensation = None if config.compensate is None else CpuCompensation(config.compensate)
        self.published = 0
        self.failed = 0  # publish raised: nothing went out
        self.invalid = 0  # failed-read values (and NaN or infinity out of a filter), not published
        self.last_value: Any = None
        self.last_published_at: float | None = None
        self.loop: task.LoopingCall | None = None
        self.stopped = False
        self._reading = False
        self._invalid_log = RepeatSummary(
            log, "{sensor}: {n} invalid reading(s) not published (latest {value!r})", reactor
        )
        self._failed_log = RepeatSummary(log, "could not publish {sensor} on {subject} ({n}x): {error}", reactor)

    def adopt_state(self, previous: SensorPublication) -> None:
        """Carry a replaced publication's filter and compensation state over where its chain is unchanged."""
        if (previous.config.sensor, previous.config.filters) == (self.config.sensor, self.config.filters):
            self.chain = previous.chain
        if self.compensation is not None and previous.config.compensate == self.config.compensate:
            self.compensation = previous.compensation

    def start(self) -> None:
        if self.config.sensor == "joystick":
            return
        self.loop = task.LoopingCall(self.poll)
        self.loop.clock = self._reactor
        self.loop.start(self.config.interval, now=True).addErrback(
            lambda failure: log.failure("publication {subject} stopped", failure, subject=self.config.subject)
        )

    def stop(self) -> None:
        self.stopped = True  # a read still in flight is dropped when it returns
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.loop = None
        self._invalid_log.flush(again=False)
        self._failed_log.flush(again=False)

    def poll(self) -> None:
        if self._reading:  # the device is still busy with the previous read: skip, don't pile up
            return
        self._reading = True
        reading = self.read_inputs()
        reading.addCallbacks(self.on_reading, self.on_read_error)
        reading.addErrback(lambda failure: log.failure("publishing {sensor} failed", failure, sensor=self.config.sensor))
        reading.addBoth(self._done_reading)

    def read_inputs(self):
        """A Deferred of what `on_reading` takes: `(value, unit)`, or the compensation's inputs by sensor."""
        if self.compensation is None:
            return self._read(self.config.sensor)
        return self._read_many(COMPENSATION_INPUTS)

    def send_current(self):
        """Read and publish now, the deadband ignored (filters still apply): a new subscriber's first state."""
        reading = self.read_inputs()
        reading.addCallback(self.on_reading, due=True)
        return reading

    def _done_reading(self, _):
        self._reading = False

    def on_read_error(self, failure) -> None:
        if not self.stopped:
            log.warn("reading {sensor} failed: {error}", sensor=self.config.sensor, error=failure.getErrorMessage())

    def on_reading(self, reading, due: bool = False) -> None:
        if self.stopped:
            return
        sensor = self.config.sensor
        if self.compensation is None:
            value, unit = reading
            inputs = {sensor: value}
        else:
            inputs = {name: reading[name][0] for name in COMPENSATION_INPUTS}
            unit = reading[COMPENSATION_INPUTS[0]][1]
        for name, input_value in inputs.items():
            if not is_valid_reading(name, input_value):
                self._count_invalid(name, input_value)
                return
        if self.compensation is None:
            raw = value
        else:
            raw = uncorrected(inputs["temperature_from_humidity"], inputs["temperature_from_pressure"])
            value = self.compensation.feed(*(inputs[name] for name in COMPENSATION_INPUTS))
        now = self._clock()
        invalid_before = self.chain.invalid
        value = self.chain.feed(value, now)
        if value is None:
            if self.chain.invalid > invalid_before:
                self._count_invalid(sensor, raw)
            return
        self._record(sensor, value, unit)
        processed = self.compensation is not None or bool(self.chain.filters)
        due = due or is_due(self.config, value, now, self.last_value, self.last_published_at)
        if due and self.publish(value, unit, raw if processed else None):
            # Only a reading that went out moves the deadband: after an outage the next one is due.
            self.last_value = value
            self.last_published_at = now

    def _count_invalid(self, sensor: str, value: Any) -> None:
        self.invalid += 1
        self._invalid_log.add(sensor=sensor, value=value)

    def publish(self, value: Any, unit: str | None, raw: Any = None) -> bool:
        """Publish one reading now; False (and logged) when the client refused it."""
        body = reading_document(self.device_id, self.config.sensor, value, unit, raw)
        try:
            self._publish(self.config.subject, encode(body))
        except NatsError as error:
            self.failed += 1
            self._failed_log.add(sensor=self.config.sensor, subject=self.config.subject, error=str(error))
            return False
        self.published += 1
        return True

    def describe(self) -> str:
        return f"publication {self.config.sensor} -> {self.config.subject}"

    def info(self) -> dict:
        return {
            "subject": self.config.subject,
            "sensor": self.config.sensor,
            "published": self.published,
            "failed": self.failed,
            "invalid": self.invalid,
        }
