"""Fixtures of the client's JetStream tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def js_server(nats_flavour):
    """One nats-server with JetStream, its store in a directory of its own that survives stop()/start()."""
    server = nats_flavour.server(jetstream=True)
    try:
        yield server.start()
    finally:
        server.cleanup()
