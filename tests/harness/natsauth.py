"""Real nats-servers that each demand one kind of authentication, for the client's auth and TLS tests.

A pytest plugin: register it with `pytest_plugins = ["tests.harness.natsauth"]`. Every fixture starts its own
nats-server on loopback, hands back what a client needs to get in (plus a credential the server does
not accept, for the "refused" half of a test), and stops the server afterwards. The server is the
build named by the `nats_flavour` fixture (tests/conftest.py), so the client's tests run these
against every server flavour.

Keys and JWTs are minted here rather than checked in, so no secret lives in the repository and no
JWT ever expires under a test. The JWT layout follows nats-io/jwt v2, which nats-server validates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import nkeys
import pytest
import trustme

from bridge.testing.nats_server import NatsServer

__all__ = [
    "CredsServer",
    "NkeyServer",
    "TlsServer",
    "TokenServer",
    "UserPassServer",
    "creds_file_text",
    "creds_server",
    "issue_jwt",
    "new_keypair",
    "nkey_server",
    "tls_server",
    "tls_server_handshake_first",
    "tls_server_no_client_cert",
    "token_server",
    "user_creds",
    "userpass_server",
]


# --- keys and JWTs -------------------------------------------------------------------------------


def new_keypair(prefix: int) -> nkeys.KeyPair:
    """A fresh Ed25519 nkey; `prefix` is an `nkeys.PREFIX_BYTE_*` role (operator, account, user)."""
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(seed)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# What nats-io/jwt's New{Account,User}Claims default to: without these the server reads 0 as
# "no connections / no subscriptions allowed".
_NO_LIMITS = {"subs": -1, "data": -1, "payload": -1}
_ACCOUNT_NATS = {
    "limits": {**_NO_LIMITS, "imports": -1, "exports": -1, "wildcards": True, "conn": -1, "leaf": -1},
    "default_permissions": {"pub": {}, "sub": {}},
}
_USER_NATS = {"pub": {}, "sub": {}, **_NO_LIMITS}
_NATS_FIELDS = {"operator": {}, "account": _ACCOUNT_NATS, "user": _USER_NATS}


def issue_jwt(kind: str, subject: nkeys.KeyPair, issuer: nkeys.KeyPair, name: str) -> str:
    """A NATS JWT of `kind` (operator | account | user) for `subject`, signed by `issuer`.

    An operator signs itself; an account is signed by its operator; a user by its account.
    """
    claims = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject.public_key.decode(),
    }
    # jti is the hash of the standard claims without it, as nats-io/jwt v2 computes it.
    digest = hashlib.new("sha512_256", _json(claims)).digest()
    claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    claims["nats"] = {**_NATS_FIELDS[kind], "type": kind, "version": 2}
    signed = _b64url(_json({"typ": "JWT", "alg": "ed25519-nkey"})) + "." + _b64url(_json(claims))
    return signed + "." + _b64url(issuer.sign(signed.encode()))


def creds_file_text(user_jwt: str, user_seed: bytes) -> str:
    """A creds file in the layout `nsc` writes and nats.go / nats-py read."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n"
        "\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n"
        "\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed.decode()}\n"
        "------END USER NKEY SEED------\n"
        "\n"
        "*************************************************************\n"
    )


def user_creds(account: nkeys.KeyPair, path: Path, name: str = "user") -> Path:
    """Mint a user of `account` and write its creds file to `path`."""
    user = new_keypair(nkeys.PREFIX_BYTE_USER)
    path.write_text(creds_file_text(issue_jwt("user", user, account, name), user.seed))
    return path


# --- what each fixture hands to a test -----------------------------------------------------------


@dataclass(frozen=True)
class _AuthServer:
    server: NatsServer

    @property
    def url(self) -> str:
        return self.server.url


@dataclass(frozen=True)
class UserPassServer(_AuthServer):
    user: str
    password: str


@dataclass(frozen=True)
class TokenServer(_AuthServer):
    token: str


@dataclass(frozen=True)
class NkeyServer(_AuthServer):
    """`stranger_seed_path` holds a well-formed user seed the server has never heard of."""

    public_key: str
    seed_path: Path
    stranger_seed_path: Path


@dataclass(frozen=True)
class CredsServer(_AuthServer):
    """`stranger_creds_path` holds a user of an account the server does not trust."""

    creds_path: Path
    stranger_creds_path: Path


@dataclass(frozen=True)
class TlsServer(_AuthServer):
    """The client certificate is signed by `ca_path`; `other_ca_path` signed nothing the server uses.

    When `requires_client_cert` is false the server never asks for the client certificate. When
    `handshake_first` is true the server starts TLS before its INFO (clients must do TLS first).
    """

    ca_path: Path
    client_cert_path: Path
    client_key_path: Path
    other_ca_path: Path
    requires_client_cert: bool
    handshake_first: bool = False


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def userpass_server(nats_flavour):
    with nats_flavour.server(config='authorization { user: "bridge", password: "s3cret pass" }') as server:
        yield UserPassServer(server, user="bridge", password="s3cret pass")


@pytest.fixture
def token_server(nats_flavour):
    token = _b64url(os.urandom(18))
    with nats_flavour.server(config=f'authorization {{ token: "{token}" }}') as server:
        yield TokenServer(server, token=token)


@pytest.fixture
def nkey_server(nats_flavour, tmp_path):
    user = new_keypair(nkeys.PREFIX_BYTE_USER)
    seed_path = tmp_path / "user.nk"
    seed_path.write_bytes(user.seed + b"\n")
    stranger_path = tmp_path / "stranger.nk"
    stranger_path.write_bytes(new_keypair(nkeys.PREFIX_BYTE_USER).seed + b"\n")
    public_key = user.public_key.decode()
    with nats_flavour.server(config=f"authorization {{ users: [ {{ nkey: {public_key} }} ] }}") as server:
        yield NkeyServer(server, public_key=public_key, seed_path=seed_path, stranger_seed_path=stranger_path)


@pytest.fixture
def creds_server(nats_flavour, tmp_path):
    operator = new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    operator_jwt = issue_jwt("operator", operator, operator, "bridge-test-operator")
    account_jwt = issue_jwt("account", account, operator, "bridge-test-account")
    config = (
        f"operator: {operator_jwt}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {account.public_key.decode()}: {account_jwt} }}\n"
    )
    creds_path = user_creds(account, tmp_path / "user.creds")
    stranger_account = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    stranger_path = user_creds(stranger_account, tmp_path / "stranger.creds", name="stranger")
    with nats_flavour.server(config=config) as server:
        yield CredsServer(server, creds_path=creds_path, stranger_creds_path=stranger_path)


def _write_cert(cert: trustme.LeafCert, cert_path: Path, key_path: Path) -> None:
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))


def _tls_server(flavour, directory: Path, *, verify_clients: bool, handshake_first: bool = False):
    ca = trustme.CA()
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    other_ca_path = directory / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca_path))
    server_cert, server_key = directory / "server.pem", directory / "server-key.pem"
    _write_cert(ca.issue_cert("127.0.0.1", "localhost"), server_cert, server_key)
    client_cert, client_key = directory / "client.pem", directory / "client-key.pem"
    _write_cert(ca.issue_cert("bridge-client.example"), client_cert, client_key)
    config = (
        "tls {\n"
        f'  cert_file: "{server_cert}"\n'
        f'  key_file: "{server_key}"\n'
        f'  ca_file: "{ca_path}"\n'
        f"  verify: {'true' if verify_clients else 'false'}\n"
        + ("  handshake_first: true\n" if handshake_first else "")
        + "}\n"
    )
    server = flavour.server(config=config, scheme="tls")
    return server, TlsServer(
        server,
        ca_path=ca_path,
        client_cert_path=client_cert,
        client_key_path=client_key,
        other_ca_path=other_ca_path,
        requires_client_cert=verify_clients,
        handshake_first=handshake_first,
    )


@pytest.fixture
def tls_server(nats_flavour, tmp_path):
    server, described = _tls_server(nats_flavour, tmp_path, verify_clients=True)
    with server:
        yield described


@pytest.fixture
def tls_server_no_client_cert(nats_flavour, tmp_path):
    server, described = _tls_server(nats_flavour, tmp_path, verify_clients=False)
    with server:
        yield described


@pytest.fixture
def tls_server_handshake_first(nats_flavour, tmp_path):
    """TLS before INFO (`tls { handshake_first: true }`, nats-server >= 2.10.4); no client certificate."""
    nats_flavour.require("2.10.4", "tls handshake_first, nats-io/nats-server#4642")
    server, described = _tls_server(nats_flavour, tmp_path, verify_clients=False, handshake_first=True)
    with server:
        yield described
