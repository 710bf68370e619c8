"""errors.py: which server -ERR texts are fatal and which exception each becomes."""

from __future__ import annotations

import pytest

from bridge.nats import PermissionViolationError
from bridge.nats.errors import MaxSubscriptionsError, ServerError, classify_server_error


@pytest.mark.parametrize(
    ("message", "kind", "fatal"),
    [
        ("Maximum Subscriptions Exceeded", MaxSubscriptionsError, False),
        ("maximum subscriptions exceeded", MaxSubscriptionsError, False),
        ("Permissions Violation for Subscription to \"a.>\"", PermissionViolationError, False),
        ("Invalid Subject", ServerError, False),
        ("Unknown Protocol Operation", ServerError, True),
        ("some future error", ServerError, True),
    ],
)
def test_server_errors_that_keep_the_connection_are_not_fatal(message, kind, fatal):
    """Guards the MaxSubscriptionsError and per-operation lines of classify_server_error, and
    the default (unknown -ERR texts are fatal: the server closes, we reconnect)."""
    error = classify_server_error(message, "nats://h:1")
    assert type(error) is kind and error.fatal is fatal
