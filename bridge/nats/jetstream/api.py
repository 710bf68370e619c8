"""The JetStream API as the rest of the package speaks it: JSON requests on `$JS.API.<verb>`,
JSON answers with an `"error"` object when the server refuses (`errors.api_error` picks the
exception); nobody answering at all (503) means the server has no JetStream.
"""

from __future__ import annotations

import json

from bridge.nats.errors import JetStreamError, JetStreamNotEnabledError, NoRespondersError, api_error

__all__ = ["API_PREFIX", "parse_json_reply", "request"]

API_PREFIX = "$JS.API"


def parse_json_reply(msg) -> dict:
    """The JSON body of an API answer; its `"error"` raised as a `JetStreamApiError`."""
    try:
        body = json.loads(msg.data)
    except ValueError as exc:
        raise JetStreamError(f"JetStream answered something that is not JSON: {msg.data[:80]!r}") from exc
    if not isinstance(body, dict):
        raise JetStreamError(f"JetStream answered JSON that is not an object: {msg.data[:80]!r}")
    error = body.get("error")
    if error:
        raise api_error(error)
    return body


async def request(client, verb: str, body: dict | None, timeout: float) -> dict:
    """Request `$JS.API.<verb>` through `client` with `body` as JSON; the answer's JSON, or its error raised."""
    payload = b"" if body is None else json.dumps(body).encode()
    subject = f"{API_PREFIX}.{verb}"
    try:
        msg = await client.request(subject, payload, timeout)
    except NoRespondersError:
        raise JetStreamNotEnabledError(f"no JetStream answered on {subject!r}") from None
    return parse_json_reply(msg)
