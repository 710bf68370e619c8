"""The durable publisher in memory: a fake JetStream that acks when told, a `task.Clock`, and spool
file work run inline. One record in flight, the oldest unacked first, the same message id on
every retry, the spool written in batches and trimmed by acks, and a restart that sends what
the last run left before anything new."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer, task

from bridge.nats.errors import NatsTimeoutError, NoStreamResponseError
from bridge.nats.jetstream import PubAck
from bridge.telemetry.durable import (
    DurablePublisher,
    message_id,
    retry_delay,
    stream_config,
    stream_subjects,
)
from bridge.telemetry.spool import Spool

SUBJECT = "sensors.pi1.temperature"


class FakeClient:
    def __init__(self):
        self.is_connected = True
        self.listeners: dict[str, list] = {}

    def add_listener(self, event, callback):
        self.listeners.setdefault(event, []).append(callback)

    def remove_listener(self, event, callback):
        self.listeners[event].remove(callback)

    def emit(self, event):
        for callback in list(self.listeners.get(event, [])):
            callback()


class FakeJetStream:
    def __init__(self):
        self.sent: list[tuple[str, bytes, str, defer.Deferred]] = []

    def publish(self, subject, payload, *, msg_id):
        waiting = defer.Deferred()
        self.sent.append((subject, payload, msg_id, waiting))
        return waiting

    def ack(self, index=-1, duplicate=False):
        self.sent[index][3].callback(PubAck("SENSORS", len(self.sent), duplicate))

    def fail(self, error, index=-1):
        self.sent[index][3].errback(error)

    def payload_times(self):
        return [json.loads(payload)["time"] for _, payload, _, _ in self.sent]


def reading(time: str) -> bytes:
    return json.dumps({"device": "pi1", "sensor": "temperature", "value": 21.5, "time": time}).encode()


def inline(function, *args):
    return defer.maybeDeferred(function, *args)


@pytest.fixture
def clock():
    return task.Clock()


def new_publisher(tmp_path, clock, limit=1 << 20, segment_size=None, client=None):
    client = client or FakeClient()
    jetstream = FakeJetStream()
    publisher = DurablePublisher(client, Spool(tmp_path, limit, segment_size), device_id="pi1", subject=SUBJECT,
                                 stream="SENSORS", reactor=clock, run_io=inline, jetstream=jetstream)
    publisher.start()
    return publisher, jetstream, client


def test_one_record_in_flight_and_the_next_goes_when_the_first_is_acked(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    for second in range(3):
        publisher.publish(SUBJECT, reading(f"2026-01-01T00:00:0{second}.000Z"))
    assert len(jetstream.sent) == 1
    jetstream.ack()
    assert len(jetstream.sent) == 2
    jetstream.ack()
    jetstream.ack()
    assert jetstream.payload_times() == [f"2026-01-01T00:00:0{second}.000Z" for second in range(3)]
    assert publisher.info()["unacked"] == 0 and publisher.info()["acked"] == 3


def test_a_failed_publish_goes_again_after_the_backoff_with_the_same_message_id(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:01.000Z"))
    jetstream.fail(NatsTimeoutError("no ack"))
    assert len(jetstream.sent) == 1
    clock.advance(retry_delay(1) - 0.01)
    assert len(jetstream.sent) == 1
    clock.advance(0.02)
    assert len(jetstream.sent) == 2
    assert jetstream.sent[1][2] == jetstream.sent[0][2] == message_id("pi1", SUBJECT, "2026-01-01T00:00:00.000Z")
    jetstream.ack(duplicate=True)
    assert publisher.duplicates == 1
    assert jetstream.payload_times()[-1] == "2026-01-01T00:00:01.000Z"


def test_no_stream_is_retried_like_any_failure(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
    jetstream.fail(NoStreamResponseError(SUBJECT))
    clock.advance(retry_delay(1))
    assert len(jetstream.sent) == 2


def test_a_reconnect_sends_the_oldest_unacked_again_at_once(tmp_path, clock):
    publisher, jetstream, client = new_publisher(tmp_path, clock)
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
    client.is_connected = False
    client.emit("disconnected")
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:01.000Z"))
    assert len(jetstream.sent) == 1  # nothing goes while disconnected
    client.is_connected = True
    client.emit("reconnected")
    assert len(jetstream.sent) == 2
    assert jetstream.sent[1][2] == jetstream.sent[0][2]
    jetstream.ack(0)  # a late answer to the disowned attempt moves nothing
    assert publisher.info()["acked"] == 0
    jetstream.ack()
    assert jetstream.payload_times()[-1] == "2026-01-01T00:00:01.000Z"


def test_readings_in_the_same_millisecond_get_different_message_ids(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    for _ in range(3):
        publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
        jetstream.ack()
    assert len({msg_id for _, _, msg_id, _ in jetstream.sent}) == 3


def test_each_reading_is_written_at_once_and_the_floor_follows_acks_once_a_second(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:01.000Z"))
    assert [record.sequence for record in Spool(tmp_path, 1 << 20).load().records] == [0, 1]
    jetstream.ack()
    assert publisher.spool.floor == 0
    clock.advance(1.0)
    assert publisher.spool.floor == 1


def test_past_the_bound_the_oldest_unacked_readings_are_dropped_and_counted(tmp_path, clock):
    publisher, jetstream, client = new_publisher(tmp_path, clock, limit=1500, segment_size=300)
    client.is_connected = False
    client.emit("disconnected")
    for index in range(60):
        publisher.publish(SUBJECT, reading(f"2026-01-01T00:00:{index:02d}.000Z"))
        clock.advance(1.0)
    info = publisher.info()
    assert info["dropped"] > 0
    assert info["dropped"] + info["unacked"] == 60
    assert info["bytes"] <= 1500
    client.is_connected = True
    client.emit("reconnected")
    assert jetstream.payload_times()[-1] == f"2026-01-01T00:00:{info['dropped']:02d}.000Z"  # the oldest kept


def test_when_the_disk_fails_the_bound_holds_in_memory_and_readings_still_go_out(tmp_path, clock, monkeypatch):
    publisher, jetstream, client = new_publisher(tmp_path, clock, limit=1500)

    def full_disk(records):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publisher.spool, "append", full_disk)
    client.is_connected = False
    client.emit("disconnected")
    for index in range(60):
        publisher.publish(SUBJECT, reading(f"2026-01-01T00:00:{index:02d}.000Z"))
    info = publisher.info()
    assert info["dropped"] > 0 and info["dropped"] + info["unacked"] == 60
    assert info["unacked"] * len(reading("2026-01-01T00:00:00.000Z")) < 1500
    client.is_connected = True
    client.emit("reconnected")
    assert jetstream.payload_times()[-1] == f"2026-01-01T00:00:{info['dropped']:02d}.000Z"


def test_a_restart_sends_what_the_last_run_left_first_in_order(tmp_path, clock):
    publisher, jetstream, _ = new_publisher(tmp_path, clock)
    for index in range(4):
        publisher.publish(SUBJECT, reading(f"2026-01-01T00:00:0{index}.000Z"))
    jetstream.ack()
    publisher.stop()
    assert publisher.info()["unacked"] == 3

    again, jetstream_again, _ = new_publisher(tmp_path, clock)
    again.publish(SUBJECT, reading("2026-01-01T00:00:09.000Z"))
    for _ in range(4):
        jetstream_again.ack()
    assert jetstream_again.payload_times() == ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.000Z",
                                               "2026-01-01T00:00:03.000Z", "2026-01-01T00:00:09.000Z"]
    assert again.info()["unacked"] == 0


def test_readings_before_the_spool_is_loaded_wait_for_it(tmp_path, clock):
    loading = defer.Deferred()
    client = FakeClient()
    jetstream = FakeJetStream()
    spool = Spool(tmp_path, 1 << 20)
    run_io = lambda function, *args: loading.addCallback(lambda _: function(*args)) if function == spool.load \
        else inline(function, *args)  # noqa: E731
    publisher = DurablePublisher(client, spool, device_id="pi1", subject=SUBJECT, stream="SENSORS", reactor=clock,
                                 run_io=run_io, jetstream=jetstream)
    publisher.start()
    publisher.publish(SUBJECT, reading("2026-01-01T00:00:00.000Z"))
    assert jetstream.sent == [] and publisher.info()["unacked"] == 1
    loading.callback(None)
    assert len(jetstream.sent) == 1


def test_retry_delay_doubles_up_to_its_maximum():
    assert [retry_delay(n, 0.1, 1.0) for n in (1, 2, 3, 4, 5, 50)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_the_stream_takes_sensors_keeps_a_week_and_drops_repeats():
    assert stream_config("SENSORS", ["sensors.pi1.t"], 3)["num_replicas"] == 3
    assert stream_config("SENSORS", ["sensors.pi1.t"], 1)["num_replicas"] == 1
    config = stream_config("SENSORS", ["sensors.pi1.t", "sensors.pi2.t"], 1)
    assert config["subjects"] == ["sensors.>"]
    assert config["duplicate_window"] >= 120 * 10**9 and config["discard"] == "old"
    assert stream_subjects(["home.pi1.t", "sensors.pi1.t"]) == ["home.pi1.t", "sensors.pi1.t"]
