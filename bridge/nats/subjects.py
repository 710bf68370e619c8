"""NATS subject syntax: validation and wildcard matching, without a server."""

from __future__ import annotations

_FORBIDDEN = frozenset(" \t\r\n\f\v")


def validate_subject(subject: str, *, wildcards: bool) -> str | None:
    """Return why `subject` is not valid, or None.

    `wildcards=True` for subscriptions (`*` one token, `>` the rest, each a whole token, `>` last);
    publish subjects must be literal. A `*` or `>` inside a longer token (`sensor*1`) is a literal
    character, as nats-server treats it: a wildcard only when it is the whole token.
    """
    if not isinstance(subject, str) or not subject:
        return "subject must not be empty"
    bad = _FORBIDDEN.intersection(subject)
    if bad:
        return f"subject must not contain whitespace ({', '.join(repr(c) for c in sorted(bad))})"
    tokens = subject.split(".")
    for index, token in enumerate(tokens):
        if not token:
            return f"subject {subject!r} has an empty token"
        if token in ("*", ">"):
            if not wildcards:
                return f"subject {subject!r} has wildcard {token!r}; publish subjects must be literal"
            if token == ">" and index != len(tokens) - 1:
                return f"subject {subject!r}: '>' must be the last token"
    return None


def is_literal(subject: str) -> bool:
    return validate_subject(subject, wildcards=False) is None


def subject_matches(pattern: str, subject: str) -> bool:
    """Does the literal `subject` match the subscription `pattern`?"""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != "*" and token != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)
