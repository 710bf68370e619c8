"""Masking secrets in what gets printed or logged: one mask, one rule for server URLs."""

from __future__ import annotations

MASK = "********"


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


def url_secret(url: str) -> str | None:
    """The password or token written into a server URL, if any (for scrubbing messages)."""
    span = _secret_span(url)
    return None if span is None or span[0] == span[1] else url[span[0] : span[1]]


def redact_url(url: str) -> str:
    """`nats://pi:s3cret@host:4222` -> `nats://pi:********@host:4222`; the rest is kept as written.

    Userinfo without a colon is a token (`nats://t0ken@host`), so it is masked whole.
    """
    span = _secret_span(url)
    return url if span is None else url[: span[0]] + MASK + url[span[1] :]
