"""The auth/TLS fixtures are only worth trusting if the official client agrees with them.

Each fixture is checked with nats-py: the credentials it hands out get a working connection (a
message makes the round trip through the server), and the wrong ones are refused by the server.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import nats
import nats.errors
import nkeys
import pytest


async def _round_trip(url: str, **options) -> bytes:
    """Connect, receive our own message back through the server, close; return the payload."""
    client = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, **options)
    try:
        subscription = await client.subscribe("fixture.check")
        await client.publish("fixture.check", b"through")
        await client.flush()
        message = await subscription.next_msg(timeout=5)
        return message.data
    finally:
        await client.close()


def assert_accepted(url: str, **options) -> None:
    assert asyncio.run(_round_trip(url, **options)) == b"through"


async def _swallow(error: Exception) -> None:
    """nats-py logs connection errors through this callback; the raised exception is what we check."""


def refusal(url: str, **options) -> Exception:
    """The exception nats-py raises when the server (or TLS) turns it away."""
    with pytest.raises(Exception) as excinfo:
        asyncio.run(_round_trip(url, error_cb=_swallow, **options))
    return excinfo.value


def assert_authorization_violation(url: str, **options) -> None:
    error = refusal(url, **options)
    assert isinstance(error, nats.errors.Error)
    assert "authorization violation" in str(error).lower()


def test_userpass_server_accepts_its_user(userpass_server):
    assert_accepted(userpass_server.url, user=userpass_server.user, password=userpass_server.password)


def test_userpass_server_refuses_a_wrong_password(userpass_server):
    assert_authorization_violation(userpass_server.url, user=userpass_server.user, password="wrong")


def test_userpass_server_refuses_anonymous_clients(userpass_server):
    assert_authorization_violation(userpass_server.url)


def test_token_server_accepts_its_token(token_server):
    assert_accepted(token_server.url, token=token_server.token)


def test_token_server_refuses_another_token(token_server):
    assert_authorization_violation(token_server.url, token=token_server.token + "x")


def test_nkey_server_accepts_its_seed(nkey_server):
    assert_accepted(nkey_server.url, nkeys_seed=str(nkey_server.seed_path))


def test_nkey_server_public_key_belongs_to_the_seed(nkey_server):
    seed = nkey_server.seed_path.read_bytes().strip()
    assert nkeys.from_seed(seed).public_key.decode() == nkey_server.public_key


def test_nkey_server_refuses_an_unknown_seed(nkey_server):
    assert_authorization_violation(nkey_server.url, nkeys_seed=str(nkey_server.stranger_seed_path))


def test_creds_server_accepts_its_creds_file(creds_server):
    assert_accepted(creds_server.url, user_credentials=str(creds_server.creds_path))


def test_creds_server_refuses_a_user_of_an_untrusted_account(creds_server):
    assert_authorization_violation(creds_server.url, user_credentials=str(creds_server.stranger_creds_path))


def test_creds_server_refuses_clients_without_credentials(creds_server):
    assert_authorization_violation(creds_server.url)


def _tls_context(ca_path, cert_path=None, key_path=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_path))
    if cert_path:
        context.load_cert_chain(str(cert_path), str(key_path))
    return context


def test_tls_server_accepts_a_client_certificate_from_its_ca(tls_server):
    context = _tls_context(tls_server.ca_path, tls_server.client_cert_path, tls_server.client_key_path)
    assert_accepted(tls_server.url, tls=context)


def test_tls_server_is_refused_by_a_client_trusting_another_ca(tls_server):
    context = _tls_context(tls_server.other_ca_path, tls_server.client_cert_path, tls_server.client_key_path)
    error = refusal(tls_server.url, tls=context)
    assert isinstance(error, ssl.SSLCertVerificationError)


def test_tls_server_refuses_a_client_without_a_certificate(tls_server):
    assert tls_server.requires_client_cert
    refusal(tls_server.url, tls=_tls_context(tls_server.ca_path))
    # The server may write its log line a moment after the client has seen the refusal.
    deadline = time.monotonic() + 5
    while "client didn't provide a certificate" not in tls_server.server.log_tail():
        assert time.monotonic() < deadline, tls_server.server.log_tail()
        time.sleep(0.05)


def test_tls_server_no_client_cert_accepts_server_verified_clients(tls_server_no_client_cert):
    assert not tls_server_no_client_cert.requires_client_cert
    assert_accepted(tls_server_no_client_cert.url, tls=_tls_context(tls_server_no_client_cert.ca_path))


def test_tls_server_no_client_cert_is_refused_by_a_client_trusting_another_ca(tls_server_no_client_cert):
    error = refusal(tls_server_no_client_cert.url, tls=_tls_context(tls_server_no_client_cert.other_ca_path))
    assert isinstance(error, ssl.SSLCertVerificationError)


@pytest.mark.nats_server_min("2.10.4", "tls handshake_first")
def test_tls_server_handshake_first_accepts_only_tls_first_clients(tls_server_handshake_first):
    context = _tls_context(tls_server_handshake_first.ca_path)
    assert_accepted(tls_server_handshake_first.url, tls=context, tls_handshake_first=True)
    refusal(tls_server_handshake_first.url, tls=context)  # waits for an INFO that never comes in clear
