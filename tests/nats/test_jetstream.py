"""JetStream on our client — stream API, PubAcks, duplicate detection, API errors.

Runs against every server flavour (current and Debian's 2.9): all of it exists in 2.9.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from bridge.nats import (
    JetStream,
    JetStreamApiError,
    JetStreamNotEnabledError,
    NoStreamResponseError,
    PubAck,
    StreamNameInUseError,
    StreamNotFoundError,
    WrongLastSequenceError,
)
from bridge.nats.jetstream import create_key_value
from tests.harness.nats_client import connected


async def jetstream(make_client, server) -> JetStream:
    return JetStream(await connected(make_client([server.url])), timeout=5.0)


ORDERS = {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory", "duplicate_window": 60_000_000_000}


@pytest_twisted.ensureDeferred
async def test_publish_answers_with_a_puback_and_a_repeated_msg_id_is_a_duplicate(js_server, make_client):
    js = await jetstream(make_client, js_server)
    await js.add_stream(ORDERS)
    first = await js.publish("orders.new", b"one", msg_id="order-1")
    again = await js.publish("orders.new", b"one", msg_id="order-1")
    other = await js.publish("orders.new", b"two", msg_id="order-2")
    assert first == PubAck("ORDERS", 1, duplicate=False)
    assert again == PubAck("ORDERS", 1, duplicate=True)
    assert other == PubAck("ORDERS", 2, duplicate=False)
    info = await js.stream_info("ORDERS")
    assert info["state"]["messages"] == 2


@pytest_twisted.ensureDeferred
async def test_expected_last_subject_sequence_is_checked_by_the_server(js_server, make_client):
    js = await jetstream(make_client, js_server)
    await js.add_stream(ORDERS)
    await js.publish("orders.a", b"1")
    await js.publish("orders.b", b"2")
    with pytest.raises(WrongLastSequenceError) as refused:
        await js.publish("orders.a", b"3", expected_last_subject_sequence=2)
    assert refused.value.err_code == 10071 and refused.value.code == 400
    assert (await js.publish("orders.a", b"3", expected_last_subject_sequence=1)).seq == 3
    with pytest.raises(WrongLastSequenceError):
        await js.publish("orders.c", b"x", expected_last_subject_sequence=3)
    assert (await js.publish("orders.c", b"x", expected_last_subject_sequence=0)).seq == 4


@pytest_twisted.ensureDeferred
async def test_add_stream_is_idempotent_and_refuses_a_different_config(js_server, make_client):
    js = await jetstream(make_client, js_server)
    created = await js.add_stream(ORDERS)
    assert created["config"]["subjects"] == ["orders.>"]
    again = await js.add_stream(dict(ORDERS))
    assert again["config"]["name"] == "ORDERS"
    with pytest.raises(StreamNameInUseError) as refused:
        await js.add_stream(dict(ORDERS, subjects=["other.>"]))
    assert refused.value.err_code == 10058
    assert isinstance(refused.value, JetStreamApiError)


@pytest_twisted.ensureDeferred
async def test_a_missing_stream_is_a_stream_not_found_error(js_server, make_client):
    js = await jetstream(make_client, js_server)
    with pytest.raises(StreamNotFoundError) as missing:
        await js.stream_info("NOPE")
    assert (missing.value.code, missing.value.err_code) == (404, 10059)
    assert "stream not found" in missing.value.description


@pytest_twisted.ensureDeferred
async def test_publishing_where_no_stream_listens_is_no_stream_response(js_server, make_client):
    js = await jetstream(make_client, js_server)
    with pytest.raises(NoStreamResponseError):
        await js.publish("nobody.stores.this", b"x")


@pytest_twisted.ensureDeferred
async def test_a_server_without_jetstream_is_not_enabled(nats_server, make_client):
    js = await jetstream(make_client, nats_server)
    with pytest.raises(JetStreamNotEnabledError):
        await js.account_info()
    with pytest.raises(JetStreamNotEnabledError):
        await create_key_value(js, "nothing")
