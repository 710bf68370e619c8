"""`bridge --help` and each command's help: examples that parse, help for every argument, $NATS_URL."""

from __future__ import annotations

import argparse
import shlex

import pytest

from bridge.cli.main import build_parser


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


PARSER = build_parser()
COMMANDS = commands(PARSER)


def example_lines(help_text: str) -> list[str]:
    section = help_text.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split("  #")[0].strip() for line in section.splitlines()]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_shows_examples_that_parse(name):
    lines = example_lines(COMMANDS[name].format_help())
    assert lines and all(line.split("| ")[-1].startswith(f"bridge {name}") for line in lines), lines
    for line in lines:
        command = line.split("| ")[-1].split(" > ")[0]  # `echo hi | bridge send ...`, `bridge schema > f`
        words = shlex.split(command)[1:]
        parsed = build_parser().parse_args(words)
        assert parsed.command == name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_of_every_command_says_what_it_is(name):
    silent = [a.metavar or a.dest for a in COMMANDS[name]._actions if not a.help]
    assert silent == []


def test_the_main_help_has_examples_the_environment_and_the_exit_statuses():
    text = PARSER.format_help()
    for line in example_lines(text):
        assert build_parser().parse_args(shlex.split(line)[1:]).command
    assert "NATS_URL" in text and "STATE_DIRECTORY" in text
    assert "nats-sense-bridge" in text
    assert text.index("examples:") < text.index("environment:") < text.index("exit status:")
