"""Masking secrets in what gets printed or logged: one mask, one rule for server URLs."""

from __future__ import annotations

import json
import re
from typing import Iterable, Protocol

MASK = "********"
# A quoted value in a message, whole ('abc') or cut short for length ('abc...' or 'abc...).
_QUOTED = re.compile(r"""(['"])((?:(?!\1)[^\\]|\\.)*?)(\1|\.\.\.\1?)""")
_SHORTEST_CUT = 8  # a value is cut only past 50 characters; shorter "abc..." is text, not a cut value
# Shorter secrets are masked only where quoted whole: 'lab' or '7' must not blank every such letter.
SHORTEST_ANYWHERE = 4


def _secret_span(url: str) -> tuple[int, int] | None:
    """Where the password (after `user:`) or the token (userinfo without a colon) is in `url`."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    end = len(url)
    for separator in "/?#":
        found = url.find(separator, start)
        if found >= 0:
            end = min(end, found)
    at = url.rfind("@", start, end)
    if at < 0:
        return None
    colon = url.find(":", start, at)
    return (start if colon < 0 else colon + 1), at


def redact_url(url: str) -> str:
    """`nats://pi:s3cret@host:4222` -> `nats://pi:********@host:4222`; the rest is kept as written.

    Userinfo without a colon is a token (`nats://t0ken@host`), so it is masked whole.
    """
    span = _secret_span(url)
    return url if span is None else url[: span[0]] + MASK + url[span[1] :]


def mask_value(message: str, secret: str) -> str:
    """`message` with `secret` masked where it is quoted as a whole value ('s3cret', or cut short 's3cr...').

    The secret text elsewhere is left alone: a one-letter password must not blank every such letter.
    """
    forms = {repr(secret), json.dumps(secret)}
    for form in forms:
        message = message.replace(form, repr(MASK))
    quoted = {form[1:-1] for form in forms}

    def hide(match: re.Match) -> str:
        inner, end = match.group(2), match.group(3)
        if end != match.group(1) and len(inner) >= _SHORTEST_CUT and any(text.startswith(inner) for text in quoted):
            return repr(MASK)
        return match.group(0)

    return _QUOTED.sub(hide, message)


def mask_all(message: str, secrets: Iterable[str]) -> str:
    """`message` with each of `secrets` masked: quoted whole (`mask_value`), and anywhere once it is
    SHORTEST_ANYWHERE characters or longer (a path or a number in a message is not quoted). Longest
    first, so a secret that holds another is masked whole."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        message = mask_value(message, secret)
        if len(secret) >= SHORTEST_ANYWHERE:
            message = message.replace(secret, MASK)
    return message


class _HasSecrets(Protocol):
    secrets: frozenset[str]


def mask_secrets(message: str, config: _HasSecrets) -> str:
    """A log line, reply or `$SRV` metadata value about `config` (a BridgeConfig) with its secrets masked."""
    return mask_all(message, config.secrets)
