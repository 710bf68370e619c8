"""options.py: the client's settings check themselves, one message per field, and flat keywords
reach the value they belong to."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.nats.options import DEFAULT_URL, ClientOptions, KeepAlive, Reconnect
from bridge.nats.tls import TlsOptions


@pytest.mark.parametrize("make, message", [
    (lambda: Reconnect(initial_delay=-1), "initial_delay must not be negative"),
    (lambda: Reconnect(max_delay=-1), "max_delay must not be negative"),
    (lambda: Reconnect(jitter=-0.1), "jitter must not be negative"),
    (lambda: Reconnect(max_attempts=-1), "max_attempts must not be negative"),
    (lambda: Reconnect(initial_delay=2, max_delay=1), "max_delay (1) must be at least initial_delay (2)"),
    (lambda: KeepAlive(ping_interval=0), "ping_interval must be more than 0"),
    (lambda: KeepAlive(max_outstanding_pings=0), "max_outstanding_pings must be at least 1"),
    (lambda: ClientOptions(servers=[]), "servers must name at least one server URL"),
    (lambda: ClientOptions(buffer_size=-1), "buffer_size must not be negative"),
    (lambda: ClientOptions(connect_timeout=0), "connect_timeout must be more than 0"),
])
def test_each_unusable_field_is_named_in_its_own_message(make, message):
    with pytest.raises(ValueError) as raised:
        make()
    assert str(raised.value).startswith(message)


def test_the_defaults():
    options = ClientOptions()
    assert options.servers == (DEFAULT_URL,)
    assert options.reconnect == Reconnect(initial_delay=0.1, max_delay=5.0, jitter=0.2, max_attempts=0)
    assert options.keepalive == KeepAlive(ping_interval=10.0, max_outstanding_pings=2)
    assert options.buffer_size == 8 * 1024 * 1024


def test_options_are_frozen_and_normalised():
    options = ClientOptions("nats://h:1", tls={"verify": False})
    assert options.servers == ("nats://h:1",)
    assert options.tls == TlsOptions(verify=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.name = "other"


def test_a_reconnect_or_keepalive_must_be_the_value_type():
    with pytest.raises(TypeError, match="reconnect must be a Reconnect"):
        ClientOptions(reconnect={"max_delay": 1})
    with pytest.raises(TypeError, match="keepalive must be a KeepAlive"):
        ClientOptions(keepalive=None)


def test_flat_keywords_reach_the_value_they_belong_to():
    options = ClientOptions.from_keywords(["nats://h:1"], max_delay=1.0, ping_interval=3.0, name="n", randomize=False)
    assert options == ClientOptions(("nats://h:1",), name="n", randomize=False, reconnect=Reconnect(max_delay=1.0),
                                    keepalive=KeepAlive(ping_interval=3.0))
    with pytest.raises(TypeError, match="unknown client option 'pingInterval'"):
        ClientOptions.from_keywords(pingInterval=3)
    with pytest.raises(TypeError, match="unknown client option 'reconnect'"):
        ClientOptions.from_keywords(reconnect=Reconnect())
