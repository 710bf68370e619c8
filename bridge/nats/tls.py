"""TLS settings for the client, turned into the pyOpenSSL options Twisted's `startTLS` takes."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bridge.nats.errors import TlsError

# pyOpenSSL, cryptography and service_identity are imported only where TLS is set up: together
# they are a third of an idle bridge's memory, which a Pi on a plain nats:// LAN need not pay.
_TLS_MODULES = ("OpenSSL", "service_identity")

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class TlsOptions:
    """`ca_file` replaces the system trust store; `cert_file` + `key_file` are the client certificate.

    `verify=False` accepts any server certificate: for a lab bench, never for a deployment.
    Any object with these attributes (e.g. the bridge's own TlsConfig) works as well.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    handshake_first: bool = False  # TLS before INFO: for servers with `tls { handshake_first: true }`


def forgo_tls() -> None:
    """Keep the TLS libraries out of this process for good; call before the reactor is imported.

    Twisted then builds its transports without TLS, and a server that demands TLS is refused with
    a `TlsError` naming the cause, never silently downgraded.
    """
    for name in _TLS_MODULES:
        sys.modules.setdefault(name, None)


def forgo_stdlib_ssl() -> None:
    """Keep Python's own `ssl` module (and the OpenSSL it links) out of this process: ~1 MiB of an
    idle bridge. The client's TLS is pyOpenSSL's; what would import `ssl` here (asyncio, which
    Twisted's Deferreds import, and http.client) treats it as optional. Call before those load."""
    sys.modules.setdefault("ssl", None)


def tls_unavailable_reason() -> str | None:
    """Why TLS cannot be used in this process, or None when it can."""
    try:
        import OpenSSL  # noqa: F401
        import service_identity  # noqa: F401
    except ImportError as exc:
        return f"TLS support is not loaded in this process ({exc})"
    return None


def client_tls_options(options, hostname: str):
    """Build the `IOpenSSLClientConnectionCreator` for one server; raises `TlsError` on bad files."""
    from twisted.internet import ssl

    client_certificate = _client_certificate(options)
    if not getattr(options, "verify", True):
        extra = {}
        if client_certificate is not None:
            extra = {"privateKey": client_certificate.privateKey.original, "certificate": client_certificate.original}
        return ssl.CertificateOptions(verify=False, **extra)
    ca_file = getattr(options, "ca_file", None)
    trust_root = ssl.trustRootFromCertificates(_load_ca_bundle(ca_file)) if ca_file else None
    return ssl.optionsForClientTLS(hostname, trustRoot=trust_root, clientCertificate=client_certificate)


def _load_ca_bundle(path: str) -> list:
    from OpenSSL import crypto
    from twisted.internet import ssl

    pem = _read(path, "CA file")
    blocks = _PEM_CERTIFICATE.findall(pem)
    if not blocks:
        raise TlsError(f"CA file {path} holds no PEM certificate")
    try:
        return [ssl.Certificate(crypto.load_certificate(crypto.FILETYPE_PEM, block)) for block in blocks]
    except crypto.Error as exc:
        raise TlsError(f"CA file {path}: unreadable certificate ({exc})") from exc


def _client_certificate(options):
    from twisted.internet import ssl

    cert_file = getattr(options, "cert_file", None)
    key_file = getattr(options, "key_file", None)
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise TlsError("a client certificate needs both cert_file and key_file")
    cert_pem = _read(cert_file, "client certificate")
    key_pem = _read(key_file, "client key")
    try:
        return ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    except Exception as exc:  # pyOpenSSL raises crypto.Error, Twisted ValueError on mismatched pairs
        raise TlsError(f"client certificate {cert_file} / key {key_file} unusable: {exc}") from exc


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
