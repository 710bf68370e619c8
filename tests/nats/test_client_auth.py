"""Every kind of credential, and TLS with CA verification and client certificates.

The servers come from tests/harness/natsauth.py; each was proven against nats-py there, so a failure
here is ours. Refusals use `max_attempts=1` so `connect()` reports the reason instead of retrying.
"""

from __future__ import annotations

import pytest_twisted

from bridge.nats import AuthorizationError, TlsError, TlsOptions
from tests.harness.nats_client import Collector, connect_failure, connected


async def assert_round_trip(client) -> None:
    await connected(client)
    collector = Collector()
    client.subscribe("auth.check", collector)
    client.publish("auth.check", b"through")
    await collector.wait_for(1)
    assert collector.data == [b"through"]


async def refusal(client) -> Exception:
    errors: list = []
    client.add_listener("error", errors.append)
    error = await connect_failure(client)
    assert errors, "the refusal was not reported to the error listener"
    return error


@pytest_twisted.ensureDeferred
async def test_user_and_password(userpass_server, make_client):
    await assert_round_trip(make_client([userpass_server.url], user=userpass_server.user,
                                        password=userpass_server.password))


@pytest_twisted.ensureDeferred
async def test_user_and_password_from_the_url(userpass_server, make_client):
    url = userpass_server.url.replace("nats://", "nats://bridge:s3cret%20pass@")
    await assert_round_trip(make_client([url]))


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_an_authorization_error(userpass_server, make_client):
    client = make_client([userpass_server.url], user=userpass_server.user, password="wrong", max_attempts=1)
    error = await refusal(client)
    assert isinstance(error, AuthorizationError)
    assert "authorization violation" in error.message.lower()


@pytest_twisted.ensureDeferred
async def test_token(token_server, make_client):
    await assert_round_trip(make_client([token_server.url], token=token_server.token))


@pytest_twisted.ensureDeferred
async def test_wrong_token_is_refused(token_server, make_client):
    client = make_client([token_server.url], token="not-the-token", max_attempts=1)
    assert isinstance(await refusal(client), AuthorizationError)


@pytest_twisted.ensureDeferred
async def test_nkey_seed_file_signs_the_nonce(nkey_server, make_client):
    await assert_round_trip(make_client([nkey_server.url], nkey_seed_file=str(nkey_server.seed_path)))


@pytest_twisted.ensureDeferred
async def test_nkey_seed_given_inline(nkey_server, make_client):
    seed = nkey_server.seed_path.read_text().strip()
    await assert_round_trip(make_client([nkey_server.url], nkey_seed=seed))


@pytest_twisted.ensureDeferred
async def test_unknown_nkey_is_refused(nkey_server, make_client):
    client = make_client([nkey_server.url], nkey_seed_file=str(nkey_server.stranger_seed_path), max_attempts=1)
    assert isinstance(await refusal(client), AuthorizationError)


@pytest_twisted.ensureDeferred
async def test_creds_file_sends_jwt_and_signature(creds_server, make_client):
    await assert_round_trip(make_client([creds_server.url], creds_file=str(creds_server.creds_path)))


@pytest_twisted.ensureDeferred
async def test_creds_of_an_untrusted_account_are_refused(creds_server, make_client):
    client = make_client([creds_server.url], creds_file=str(creds_server.stranger_creds_path), max_attempts=1)
    assert isinstance(await refusal(client), AuthorizationError)


@pytest_twisted.ensureDeferred
async def test_tls_with_ca_and_client_certificate(tls_server, make_client):
    tls = TlsOptions(ca_file=str(tls_server.ca_path), cert_file=str(tls_server.client_cert_path),
                     key_file=str(tls_server.client_key_path))
    client = make_client([tls_server.url], tls=tls)
    await assert_round_trip(client)
    assert client.connected_url.startswith("tls://")


@pytest_twisted.ensureDeferred
async def test_tls_required_by_the_server_upgrades_a_nats_url(tls_server_no_client_cert, make_client):
    url = tls_server_no_client_cert.url.replace("tls://", "nats://")
    await assert_round_trip(make_client([url], tls={"ca_file": str(tls_server_no_client_cert.ca_path)}))


@pytest_twisted.ensureDeferred
async def test_wrong_ca_is_refused_with_a_clear_error(tls_server_no_client_cert, make_client):
    client = make_client([tls_server_no_client_cert.url], tls=TlsOptions(ca_file=str(tls_server_no_client_cert.other_ca_path)),
                         max_attempts=1)
    error = await refusal(client)
    assert isinstance(error, TlsError)
    assert "certificate verify failed" in str(error)


@pytest_twisted.ensureDeferred
async def test_missing_client_certificate_is_refused(tls_server, make_client):
    client = make_client([tls_server.url], tls=TlsOptions(ca_file=str(tls_server.ca_path)), max_attempts=1)
    error = await refusal(client)
    assert isinstance(error, TlsError)


@pytest_twisted.ensureDeferred
async def test_verify_false_accepts_an_unknown_ca(tls_server_no_client_cert, make_client):
    await assert_round_trip(make_client([tls_server_no_client_cert.url], tls=TlsOptions(verify=False)))


@pytest_twisted.ensureDeferred
async def test_tls_url_to_a_plain_server_is_refused_not_downgraded(nats_server, make_client):
    client = make_client([nats_server.url.replace("nats://", "tls://")], max_attempts=1)
    error = await refusal(client)
    assert isinstance(error, TlsError)
    assert "does not offer" in str(error)


@pytest_twisted.ensureDeferred
async def test_tls_handshake_first_for_a_server_that_requires_it(tls_server_handshake_first, make_client):
    server = tls_server_handshake_first
    await assert_round_trip(make_client([server.url], tls=TlsOptions(ca_file=str(server.ca_path), handshake_first=True)))


@pytest_twisted.ensureDeferred
async def test_without_handshake_first_such_a_server_is_a_clear_timeout(tls_server_handshake_first, make_client):
    server = tls_server_handshake_first
    client = make_client([server.url], tls=TlsOptions(ca_file=str(server.ca_path)), max_attempts=1, connect_timeout=1)
    error = await connect_failure(client)
    assert "waiting for INFO" in str(error)
