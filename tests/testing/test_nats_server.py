"""The nats-server helper the tests and the bench start servers with."""

from __future__ import annotations

import socket

from bridge.testing.nats_server import NatsServer


def test_a_monitor_port_taken_before_the_server_binds_it_is_replaced_by_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = NatsServer(jetstream=True)
        server.monitor_port = taken.getsockname()[1]
        try:
            server.start()
            assert server.monitor_port != taken.getsockname()[1]
            assert server.jsz() is not None
        finally:
            server.cleanup()
