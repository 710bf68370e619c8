"""Subject syntax and wildcard matching, checked against examples and a regex reference matcher."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.nats.subjects import is_literal, subject_matches, validate_subject

untimed = settings(deadline=None)  # no per-example timing on a shared box


@pytest.mark.parametrize("subject", ["a", "sensors.temperature", "bridge.pi-1.set_pixel", "$SYS.REQ", "_INBOX.x.y", "été.中"])
def test_literal_subjects_are_valid_everywhere(subject):
    assert validate_subject(subject, wildcards=False) is None
    assert validate_subject(subject, wildcards=True) is None
    assert is_literal(subject)


@pytest.mark.parametrize("pattern", ["*", ">", "a.*", "a.>", "*.b.>", "a.*.c", "*.*"])
def test_whole_token_wildcards_are_valid_for_subscriptions_only(pattern):
    assert validate_subject(pattern, wildcards=True) is None
    assert "publish subjects must be literal" in validate_subject(pattern, wildcards=False)
    assert not is_literal(pattern)


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("", "must not be empty"),
        (None, "must not be empty"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a.b\n", "whitespace"),
        ("a\r.b", "whitespace"),
        (".a", "empty token"),
        ("a.", "empty token"),
        ("a..b", "empty token"),
        (".", "empty token"),
        ("a.>.b", "'>' must be the last token"),
        (">.a", "'>' must be the last token"),
    ],
)
def test_invalid_subjects_say_why(subject, reason):
    assert reason in validate_subject(subject, wildcards=True)
    assert validate_subject(subject, wildcards=False) is not None
    assert not is_literal(subject)


@pytest.mark.parametrize("subject", ["a*", "sensor*1.temp", "a.*b", "a.b>", "a.>>", "**", ">a.b"])
def test_wildcard_characters_inside_a_longer_token_are_literal(subject):
    """nats-server accepts `PUB sensor*1.temp`: only a whole-token `*`/`>` is a wildcard.
    Guards the absence of a "wildcards must be whole tokens" rejection in validate_subject."""
    assert validate_subject(subject, wildcards=False) is None
    assert validate_subject(subject, wildcards=True) is None
    assert is_literal(subject)
    assert subject_matches(subject, subject)
    assert not subject_matches(subject, subject.replace("*", "x").replace(">", "x"))


def test_whitespace_reason_names_the_characters():
    assert "'\\t'" in validate_subject("a\tb c", wildcards=True) and "' '" in validate_subject("a\tb c", wildcards=True)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("*.*", "a.b", True),
        ("a.*.c", "a.x.c", True),
        ("a.*.c", "a.x.d", False),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c.d", True),
        ("a.>", "a", False),
        ("a.>", "b.c", False),
        (">", "a", True),
        (">", "a.b.c", True),
        ("*.>", "a", False),
        ("*.>", "a.b", True),
        ("a.*.>", "a.b.c", True),
        ("a.*.>", "a.b", False),
    ],
)
def test_subject_matches(pattern, subject, expected):
    assert subject_matches(pattern, subject) is expected


def reference_match(pattern: str, subject: str) -> bool:
    """The NATS rules as a regex: `*` is one token, `>` one or more, tokens never contain dots."""
    parts = []
    for token in pattern.split("."):
        parts.append({"*": r"[^.]+", ">": r".+"}.get(token, re.escape(token)))
    return re.fullmatch(r"\.".join(parts), subject) is not None


# A small alphabet so that random patterns and subjects actually match each other often.
literal_tokens = st.sampled_from(["a", "b", "c", "ab", "pi-1", "é"])
pattern_tokens = literal_tokens | st.just("*")


@st.composite
def patterns(draw) -> str:
    tokens = draw(st.lists(pattern_tokens, min_size=1, max_size=5))
    if draw(st.booleans()):
        tokens = tokens[:-1] + [">"]
    return ".".join(tokens)


literal_subjects = st.lists(literal_tokens, min_size=1, max_size=6).map(".".join)


@st.composite
def subjects_matching(draw, pattern: str) -> str:
    """A subject built to match `pattern` by filling in its wildcards."""
    tokens = []
    for token in pattern.split("."):
        if token == "*":
            tokens.append(draw(literal_tokens))
        elif token == ">":
            tokens.extend(draw(st.lists(literal_tokens, min_size=1, max_size=3)))
        else:
            tokens.append(token)
    return ".".join(tokens)


@settings(untimed, max_examples=500)
@given(patterns(), literal_subjects)
def test_matching_agrees_with_the_reference(pattern, subject):
    assert validate_subject(pattern, wildcards=True) is None
    assert validate_subject(subject, wildcards=False) is None
    assert subject_matches(pattern, subject) is reference_match(pattern, subject)


@untimed
@given(patterns().flatmap(lambda p: st.tuples(st.just(p), subjects_matching(p))))
def test_a_subject_built_from_a_pattern_matches_it(pattern_and_subject):
    pattern, subject = pattern_and_subject
    assert reference_match(pattern, subject)
    assert subject_matches(pattern, subject)


@untimed
@given(literal_subjects)
def test_a_literal_pattern_matches_only_itself(subject):
    assert subject_matches(subject, subject)
    assert not subject_matches(subject, subject + ".x")
    assert not subject_matches(subject + ".x", subject)


def test_problem_texts_are_exact():
    """The texts reach InvalidSubjectError messages; the whitespace one names every character found."""
    assert validate_subject("", wildcards=False) == "subject must not be empty"
    assert validate_subject("a b\tc\n", wildcards=True) == "subject must not contain whitespace ('\\t', '\\n', ' ')"
