"""connection.py in memory: the handshake and keepalive over a StringTransport with a task.Clock."""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.testing import StringTransport

from bridge.nats.connection import Connection, ConnectionSettings
from bridge.nats.pool import parse_server_url
from bridge.nats.subscriptions import Msg


class _Handler:
    def __init__(self):
        self.lost: list = []

    def deliver(self, msg):
        pass

    def delivered(self):
        pass

    def server_info(self, conn, options):
        pass

    def server_error(self, conn, message):
        pass

    def connection_lost(self, conn, reason):
        self.lost.append(reason)


class _StraightOut:
    """A connection's outbox that writes each frame at once and confirms nothing."""

    def __init__(self, transport):
        self.control = transport.write

    def mark(self):
        return 0

    def confirm(self, mark):
        pass


def _connection(clock, interval=10.0, max_outstanding=2):
    settings = ConnectionSettings(msg_class=Msg, connect_options=lambda info, server, tls: {"verbose": False},
                                  tls_context=lambda host: None, tls_configured=False, tls_first=False,
                                  ping_interval=interval, max_outstanding_pings=max_outstanding)
    transport = StringTransport()
    conn = Connection(parse_server_url("nats://127.0.0.1:4222"), settings, _Handler(), _StraightOut(transport), clock)
    conn.makeConnection(transport)
    return conn, transport


def test_handshake_completes_only_on_the_pong():
    """Guards the `isinstance(event, wire.Pong)` branch of Connection._process_handshake."""
    clock = task.Clock()
    conn, transport = _connection(clock)
    conn.dataReceived(b'INFO {"server_id":"x","max_payload":1048576}\r\n')
    assert transport.value() == b'CONNECT {"verbose":false}\r\nPING\r\n'
    assert not conn.handshake.called
    conn.dataReceived(b"PING\r\n")  # the server's own PING is answered, and is not our PONG
    assert transport.value().endswith(b"PONG\r\n") and not conn.handshake.called
    conn.dataReceived(b"PONG\r\n")
    assert conn.handshake.result is conn


def test_keepalive_gives_the_last_ping_half_an_interval():
    """Guards Keepalive._tick's `_deadline = callLater(interval / 2, ...)`: without it a silent
    server is noticed a whole interval later (at 30 s, not 25 s, with 10 s x 2)."""
    clock = task.Clock()
    conn, transport = _connection(clock, interval=10.0, max_outstanding=2)
    conn.dataReceived(b'INFO {"server_id":"x"}\r\n')
    conn.dataReceived(b"PONG\r\n")
    transport.clear()
    clock.advance(10)
    assert transport.value() == b"PING\r\n"
    conn.dataReceived(b"PONG\r\n")  # answered: the count starts over
    clock.advance(10)
    clock.advance(10)
    assert transport.value().count(b"PING\r\n") == 3 and not transport.disconnecting
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting  # 25 s after the last answer, not 30
