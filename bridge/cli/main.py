"""The `bridge` command: every subcommand's arguments, and the dispatch to its module.

Keep this module cheap to import: a command's module (bridge.cli.<command>) is imported only when
that command runs, so `bridge validate` never loads Twisted and `bridge --help` loads almost nothing.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import textwrap
from typing import Sequence

from bridge import __version__
from bridge.cli.exit import ExitStatus, exit_status_help, statuses_used

UNREACHABLE_HELP = "no server took the connection"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse exits on --help (OK) and usage errors (USAGE); report, don't exit
        return exit.code if isinstance(exit.code, int) else ExitStatus.USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE
    return importlib.import_module(f"bridge.cli.{args.command}").command(args)


ENVIRONMENT = """\
environment:
  NATS_URL          the server send, sub, fleet and deploy use without --server
                    (default nats://127.0.0.1:4222); `bridge demo` prints the export line
  STATE_DIRECTORY   where bridge run keeps what survives a restart (systemd sets it;
                    default ~/.local/state/bridge)"""


def wrapped(text: str) -> str:
    """A description wrapped as argparse would, for a parser that keeps its epilog's lines as written."""
    width = min(shutil.get_terminal_size().columns - 2, 100)
    return textwrap.fill(text, width)


def examples(*lines: str) -> str:
    """A command's `--help` ends with a few lines to copy."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def with_examples(commands, name: str, example_lines: Sequence[str], **options) -> argparse.ArgumentParser:
    if "description" in options:
        options["description"] = wrapped(options["description"])
    return commands.add_parser(name, epilog=examples(*example_lines),
                               formatter_class=argparse.RawDescriptionHelpFormatter, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description=wrapped("Drive Raspberry Pi Sense HATs over NATS, declaratively. "
                            "(Installed also as nats-sense-bridge, for systems where `bridge` is iproute2's.)"),
        epilog="\n\n".join([
            examples("bridge demo                                   # everything local, nothing to set up",
                     "bridge validate config.yml",
                     "bridge run config.yml",
                     "bridge send pi.kitchen.led.show 'hello world'",
                     "bridge sub 'sensors.>'",
                     "bridge fleet"),
            ENVIRONMENT,
            exit_status_help(),
        ]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_validate(commands)
    add_run(commands)
    add_send(commands)
    add_sub(commands)
    add_fleet(commands)
    add_deploy(commands)
    add_schema(commands)
    add_demo(commands)
    return parser


def add_override_option(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE`, shared by every command that reads a config file (checked when it runs)."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a value before validation, e.g. vars.room=lab or nats.servers=nats://host:4222 (repeatable)",
    )


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """`--server/-s URL`, shared by the commands that connect once (send, sub, fleet, deploy)."""
    parser.add_argument(
        "--server", "-s", dest="servers", action="append", default=[], metavar="URL",
        help="NATS server URL, credentials in it as user:password@ or token@ (repeatable: each is tried once, "
             "in order; default $NATS_URL or nats://127.0.0.1:4222)",
    )


def add_validate(commands) -> None:
    parser = with_examples(
        commands, "validate",
        ["bridge validate config.yml", "bridge validate --set vars.room=lab --print config.yml",
         "bridge validate --format json configs/*.yml      # for CI"],
        help="check config files",
        description="Check config files. " + statuses_used({
            ExitStatus.OK: "all valid",
            ExitStatus.FAILED: "any invalid",
            ExitStatus.USAGE: "a file unreadable or bad usage",
        }),
    )
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a config a bridge runs, a fleet bootstrap, or a stored fleet config")
    add_override_option(parser)
    parser.add_argument("--print", dest="print_config", action="store_true",
                        help="print the fully resolved config as YAML (secrets masked); with --format json, "
                             "as each valid file's \"config\"")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout, for CI")


def add_schema(commands) -> None:
    parser = with_examples(
        commands, "schema",
        ["bridge schema > bridge.schema.json", "bridge schema --stored"],
        help="print the config file's JSON Schema",
        description="Print the JSON Schema (2020-12) of the config file, for editors and CI. " + statuses_used({
            ExitStatus.OK: "printed",
            ExitStatus.USAGE: "bad usage",
        }),
    )
    parser.add_argument("--stored", action="store_true",
                        help="the schema of a stored config (what `bridge deploy` stores for fleet: bootstrap files)")


def add_run(commands) -> None:
    parser = with_examples(
        commands, "run",
        ["bridge run config.yml", "bridge run --web 127.0.0.1:8080 config.yml",
         "bridge run --log-format json /etc/bridge/config.yml   # under systemd, for a log shipper"],
        help="run the bridge for a config file",
        description=(
            "Connect, subscribe and publish as the config says, until SIGINT/SIGTERM (graceful stop). "
            "SIGHUP re-reads the file; an invalid file is logged and the running config kept. " + statuses_used({
                ExitStatus.OK: "after a graceful stop",
                ExitStatus.FAILED: "invalid config, device unavailable, unusable credential or TLS files, web port "
                                   "taken, or another running bridge has the same device id",
                ExitStatus.USAGE: "unreadable file or bad usage",
                ExitStatus.UNREACHABLE: "nats.reconnect.max_attempts used up, at start-up or later",
            })
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the config file (or a fleet bootstrap)")
    add_override_option(parser)
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: one JSON object per log line")
    parser.add_argument("--web", metavar="HOST:PORT",
                        help="serve the live LED web view here (loopback unless you name another address)")


def add_send(commands) -> None:
    parser = with_examples(
        commands, "send",
        ["bridge send pi.kitchen.led.show 'hello world'",
         "bridge send --check pi.kitchen.led.show hi          # fail if nothing subscribes",
         "bridge send --json pi.kitchen.led.pixel '{\"x\": 3, \"y\": 4, \"color\": [255, 0, 0]}'",
         "bridge send --request pi.kitchen.sensors.read",
         "echo hello | bridge send pi.kitchen.led.show -"],
        help="publish a message (or make a request) on a subject",
        description="Publish TEXT (words joined by spaces; '-' reads stdin) on SUBJECT. " + statuses_used({
            ExitStatus.OK: "sent (or reply ok)",
            ExitStatus.FAILED: "timeout, no responders (--request, --check) or an error reply",
            ExitStatus.USAGE: "bad usage",
            ExitStatus.UNREACHABLE: UNREACHABLE_HELP,
        }),
    )
    add_server_option(parser)
    parser.add_argument("--request", "-r", action="store_true", help="wait for the reply and print it")
    parser.add_argument("--check", action="store_true",
                        help="fail (status 1) when nothing subscribes to SUBJECT, instead of publishing into the void")
    parser.add_argument("--json", dest="as_json", action="store_true", help="the payload is JSON: check it first (an empty one is bad usage)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="wait this long for the reply (--request) or the server's confirmation (default 5)")
    parser.add_argument("subject", metavar="SUBJECT", help="where to publish, e.g. pi.kitchen.led.show")
    parser.add_argument("text", nargs="*", metavar="TEXT", help="the payload: words joined by spaces, or - for stdin")


def add_sub(commands) -> None:
    parser = with_examples(
        commands, "sub",
        ["bridge sub 'sensors.>'", "bridge sub --count 1 sensors.kitchen.temperature",
         "bridge sub --json 'bridge.*.status'"],
        help="print the messages on a subject (readings, replies), one line each",
        description="Subscribe to SUBJECT (wildcards * and > allowed) and print each message: its time, subject and "
                    "a reading as `sensor value unit`, other JSON compact, text as it is. " + statuses_used({
                        ExitStatus.OK: "after Ctrl-C or --count messages",
                        ExitStatus.USAGE: "bad usage",
                        ExitStatus.UNREACHABLE: UNREACHABLE_HELP + ", or the connection was lost",
                    }),
    )
    add_server_option(parser)
    parser.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    parser.add_argument("--json", dest="as_json", action="store_true",
                        help='one JSON object per line: {"subject", "data" (the payload as JSON, or text), "reply"?}')
    parser.add_argument("subject", metavar="SUBJECT", help="e.g. sensors.> or sensors.kitchen.temperature")


def add_fleet(commands) -> None:
    parser = with_examples(
        commands, "fleet",
        ["bridge fleet", "bridge fleet --json --timeout 5"],
        help="list the running bridges (NATS services protocol, $SRV)",
        description=(
            "Ask $SRV.INFO.bridge and $SRV.STATS.bridge and list every bridge that answers: device, host, version, "
            "config, connected server, uptime, messages received and errors; duplicate device ids are flagged. "
            + statuses_used({
                ExitStatus.OK: "it ran (also with no bridges found)",
                ExitStatus.FAILED: "the server failed the requests",
                ExitStatus.USAGE: "bad usage",
                ExitStatus.UNREACHABLE: UNREACHABLE_HELP,
            })
        ),
    )
    add_server_option(parser)
    parser.add_argument("--json", dest="as_json", action="store_true", help="a JSON list, one object per bridge")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="wait at most this long for answers; it ends sooner once every bridge known from the status "
                             "stream answered (without that stream: once none came for a quarter of it) (default 2)")


def add_deploy(commands) -> None:
    parser = with_examples(
        commands, "deploy",
        ["bridge deploy pis.yml --key pis --dry-run --device-id kitchen",
         "bridge deploy pis.yml --key pis --wait",
         "bridge deploy --key pis --history", "bridge deploy --key pis --rollback"],
        help="store a config for many Pis in a NATS key-value bucket (their fleet: key)",
        description=(
            "Check FILE as a stored config (version, vars, subscriptions, publications) and store it as the next "
            "revision of KEY in the bucket (created if missing: history 10, up to 3 replicas), compare-and-set "
            "against the revision read first; every bridge whose bootstrap file names that key applies it, and "
            "each one's outcome is printed (up to 2 s; --wait waits longer and sets the exit status). Nothing is "
            "stored when FILE is invalid or has the current content. " + statuses_used({
                ExitStatus.OK: "stored, unchanged, valid with --dry-run, listed or shown",
                ExitStatus.FAILED: "invalid file, nothing to roll back to, or a server error (no leader in time)",
                ExitStatus.USAGE: "unreadable file, bad usage, or NATS refused this user permission",
                ExitStatus.UNREACHABLE: UNREACHABLE_HELP,
                ExitStatus.REFUSED: "with --wait, some Pi refused the revision",
                ExitStatus.NOT_ANSWERED: "with --wait, some Pi did not apply or refuse it in time",
                ExitStatus.CONFLICT: "someone else deployed meanwhile, or the key is not at --expect-revision",
            })
        ),
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="the stored config to store (not with --rollback, "
                        "--history, --show)")
    parser.add_argument("--key", required=True, metavar="NAME", help="the key the Pis' bootstrap files name (fleet.key)")
    parser.add_argument("--bucket", default="bridge_config", metavar="B", help="the key-value bucket (default bridge_config)")
    add_server_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="only check FILE; store nothing")
    parser.add_argument("--device-id", dest="device_ids", action="append", metavar="ID",
                        help="check FILE as the Pi with this device id does (repeatable; default example)")
    parser.add_argument("--fleet", action="store_true",
                        help="with --dry-run: check FILE for every device id following KEY now (asks $SRV)")
    parser.add_argument("--expect-revision", type=int, metavar="N",
                        help="store only if KEY is at revision N now (0: KEY must have none); for scripts")
    waiting = parser.add_mutually_exclusive_group()
    waiting.add_argument("--wait", nargs="?", type=float, const=30.0, metavar="SECONDS",
                         help="wait until every Pi following KEY applied or refused the revision (default 30 s); "
                              "the exit status says how it went")
    waiting.add_argument("--no-wait", action="store_true", help="do not ask the Pis what they did")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true",
                      help="store the content of the revision before the current one as a new revision, walking "
                           "back over rollbacks, invalid revisions and the current content (no FILE)")
    what.add_argument("--history", action="store_true",
                      help="list the key's revisions: time, size, rollbacks, the current one, refusals (no FILE)")
    what.add_argument("--show", type=int, metavar="REV", help="print the text of revision REV (no FILE)")
    parser.add_argument("--to", type=int, metavar="REV", help="roll back to revision REV (implies --rollback)")


def add_demo(commands) -> None:
    parser = with_examples(
        commands, "demo",
        ["bridge demo", "bridge demo --web 127.0.0.1:9000 --config my.yml"],
        help="local nats-server + bridge on an emulated HAT + LED web view (what `make run` runs)",
        description="Start an embedded nats-server on loopback, the bridge and the LED web view; Ctrl-C stops all. "
                    + statuses_used({
                        ExitStatus.OK: "after Ctrl-C",
                        ExitStatus.FAILED: "invalid config, the nats-server or the device did not start",
                        ExitStatus.USAGE: "unreadable file or bad usage",
                    }),
    )
    parser.add_argument("--config", default=None, metavar="FILE", help="default: the demo config shipped with the package (configs/demo.yml)")
    parser.add_argument("--web", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where the LED web view listens (default 127.0.0.1:8080, or a free port)")
