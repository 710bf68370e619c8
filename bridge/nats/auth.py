"""Credentials for the CONNECT line: user/password, token, NKEY seed, or a creds file (JWT + seed).

Seed and creds files are read again on every connect, so a rotated file takes effect on the next
reconnect; `Credentials.check()` reads them once up front so a wrong path fails at start-up.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from bridge.nats.errors import AuthConfigError

# The framing nats.go and the nsc tool write: a dashed BEGIN line, the value, a dashed END line.
_CREDS_BLOCK = re.compile(r"\s*(?:-{3,}[^\n]*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}[^\n]*-{3,}(?:\r?\n|\Z))")


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey_seed: str | None = None
    nkey_seed_file: str | None = None
    creds_file: str | None = None

    def check(self) -> None:
        """Raise `AuthConfigError` now rather than on every connect attempt."""
        kinds = [
            name
            for name, present in (
                ("token", self.token is not None),
                ("nkey seed", self.nkey_seed is not None or self.nkey_seed_file is not None),
                ("creds file", self.creds_file is not None),
            )
            if present
        ]
        if len(kinds) > 1:
            raise AuthConfigError(f"give only one of {', '.join(kinds)}")
        if self.token is not None and self.user is not None:
            raise AuthConfigError("give either a token or a user, not both")
        if self.password is not None and self.user is None:
            raise AuthConfigError("a password needs a user")
        if self.nkey_seed is not None and self.nkey_seed_file is not None:
            raise AuthConfigError("give nkey_seed or nkey_seed_file, not both")
        if self.creds_file is not None:
            self._read_creds()
        elif self.signs_nonce:
            self._key_pair()

    @property
    def signs_nonce(self) -> bool:
        return self.nkey_seed is not None or self.nkey_seed_file is not None or self.creds_file is not None

    def connect_fields(self, nonce: str | None, url_user: str | None = None, url_password: str | None = None) -> dict:
        """The auth part of CONNECT. Credentials in the server URL stand in when none were given."""
        fields: dict = {}
        if self.signs_nonce:
            if not nonce:
                raise AuthConfigError("the server sent no nonce to sign: it does not accept NKEY/JWT auth")
            if self.creds_file is not None:
                jwt, seed = self._read_creds()
                fields["jwt"] = jwt
                key_pair = _key_pair_from_seed(seed, self.creds_file)
            else:
                key_pair = self._key_pair()
                fields["nkey"] = key_pair.public_key.decode()
            fields["sig"] = base64.urlsafe_b64encode(key_pair.sign(nonce.encode())).rstrip(b"=").decode()
            return fields
        if self.token is not None:
            fields["auth_token"] = self.token
        elif self.user is not None:
            fields["user"] = self.user
            if self.password is not None:
                fields["pass"] = self.password
        elif url_user is not None:
            if url_password is None:
                fields["auth_token"] = url_user
            else:
                fields["user"] = url_user
                fields["pass"] = url_password
        return fields

    def _key_pair(self):
        if self.nkey_seed is not None:
            return _key_pair_from_seed(self.nkey_seed.strip().encode(), "nkey_seed")
        text = _read(self.nkey_seed_file, "NKEY seed file")
        seed = next((line.strip() for line in text.splitlines() if line.strip().startswith("SU")), None)
        if seed is None:
            raise AuthConfigError(f"{self.nkey_seed_file}: no user seed (a line starting with 'SU') found")
        return _key_pair_from_seed(seed.encode(), self.nkey_seed_file)

    def _read_creds(self) -> tuple[str, bytes]:
        text = _read(self.creds_file, "creds file")
        blocks = _CREDS_BLOCK.findall(text)
        if len(blocks) < 2:
            raise AuthConfigError(f"{self.creds_file}: expected a JWT block and a seed block, found {len(blocks)}")
        jwt, seed = blocks[0], blocks[1].encode()
        _key_pair_from_seed(seed, self.creds_file)
        return jwt, seed


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise AuthConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _key_pair_from_seed(seed: bytes, origin: str):
    import nkeys  # only clients that sign pay for it (and for PyNaCl beneath it)

    try:
        return nkeys.from_seed(bytearray(seed))
    except Exception as exc:  # nkeys raises its own ErrInvalidSeed family, and binascii errors
        raise AuthConfigError(f"{origin}: not a valid NKEY seed ({type(exc).__name__})") from exc
