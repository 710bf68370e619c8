"""The `bridge` command: one subparser and one function per subcommand.

Keep this module cheap to import: each command imports what it needs when it runs, so
`bridge validate` never loads Twisted and `bridge --help` loads almost nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from bridge import __version__

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse exits on --help (0) and usage errors (2); report, don't exit
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from bridge.config.errors import ConfigError, ConfigFileError

    try:
        return args.handler(args)
    except ConfigError as error:  # from the commands that run a config: the same codes as validate
        print(error, file=sys.stderr)
        return EXIT_USAGE if isinstance(error, ConfigFileError) else EXIT_INVALID


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="Drive Raspberry Pi Sense HATs over NATS, declaratively.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_validate(commands)
    add_run(commands)
    add_send(commands)
    add_fleet(commands)
    add_deploy(commands)
    add_schema(commands)
    add_demo(commands)
    return parser


def _override(text: str) -> str:
    from bridge.config.overrides import OverrideSyntaxError, split_override

    try:
        split_override(text)
    except OverrideSyntaxError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_override_option(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE`, shared by every command that reads a config file."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], type=_override, metavar="KEY=VALUE",
        help="override a value before validation, e.g. vars.room=lab or nats.servers=nats://host:4222 (repeatable)",
    )


# -- validate ---------------------------------------------------------------------------------------

def add_validate(commands) -> None:
    parser = commands.add_parser(
        "validate",
        help="check config files",
        description="Check config files. Exit status: 0 all valid, 1 any invalid, 2 a file unreadable or bad usage.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_override_option(parser)
    parser.add_argument("--print", dest="print_config", action="store_true",
                        help="print the fully resolved config as YAML (secrets masked); with --format json, "
                             "as each valid file's \"config\"")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout, for CI")
    parser.set_defaults(handler=validate_command)


def validate_command(args: argparse.Namespace) -> int:
    from bridge.config import ConfigError, ConfigFileError
    from bridge.config.convert import to_plain, to_yaml
    from bridge.config.loader import load
    from bridge.config.redact import redact_url

    status = EXIT_OK
    reports = []
    printed = []
    for file in args.files:
        report = {"file": file, "valid": False, "errors": [], "summary": None}
        if args.print_config:
            report["config"] = None
        reports.append(report)
        try:
            loaded = load(file, args.overrides)
        except ConfigError as error:
            status = max(status, EXIT_USAGE if isinstance(error, ConfigFileError) else EXIT_INVALID)
            report["errors"] = [issue.as_dict() for issue in error.errors]
            if args.format == "text":
                print(error, file=sys.stderr)
            continue
        config = loaded.config
        report["valid"] = True
        report["summary"] = {
            "device": config.device.id,
            "driver": config.device.driver,
            "subscriptions": len(config.subscriptions),
            "publications": len(config.publications),
            "servers": [redact_url(url) for url in config.nats.servers],
        }
        if args.format == "json":
            if args.print_config:
                report["config"] = to_plain(config, loaded.secret_paths)
        elif args.print_config:
            printed.append(f"# {file}\n" + to_yaml(config, loaded.secret_paths))
        else:
            print(_summary(file, report["summary"]))
    if args.format == "json":
        import json

        print(json.dumps({"valid": status == EXIT_OK, "files": reports}, indent=2))
    elif printed:
        print("---\n".join(printed), end="")
    return status


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _summary(file: str, summary: dict) -> str:
    return (
        f"{file}: ok: device {summary['device']} ({summary['driver']}), "
        f"{_plural(summary['subscriptions'], 'subscription')}, {_plural(summary['publications'], 'publication')}, "
        f"servers {', '.join(summary['servers'])}"
    )


# -- schema -----------------------------------------------------------------------------------------

def add_schema(commands) -> None:
    parser = commands.add_parser(
        "schema",
        help="print the config file's JSON Schema",
        description="Print the JSON Schema (2020-12) of the config file, for editors and CI.",
    )
    parser.add_argument("--stored", action="store_true",
                        help="the schema of a stored config (what `bridge deploy` stores for fleet: bootstrap files)")
    parser.set_defaults(handler=schema_command)


def schema_command(args: argparse.Namespace) -> int:
    from bridge.config.schema import schema_text, stored_schema_text

    sys.stdout.write(stored_schema_text() if args.stored else schema_text())
    return EXIT_OK


# -- run --------------------------------------------------------------------------------------------

def add_run(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="run the bridge for a config file",
        description=(
            "Connect, subscribe and publish as the config says, until SIGINT/SIGTERM (graceful stop, exit 0). "
            "SIGHUP re-reads the file; an invalid file is logged and the running config kept. "
            "Exit status: 1 invalid config, device unavailable, unusable credential or TLS files, web port taken, "
            "nats.reconnect.max_attempts used up, or another running bridge has the same device id; 2 unreadable file or bad usage."
        ),
    )
    parser.add_argument("file", metavar="FILE")
    add_override_option(parser)
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: one JSON object per log line")
    parser.add_argument("--web", metavar="HOST:PORT",
                        help="serve the live LED web view here (loopback unless you name another address)")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    from bridge.cli.run import run_bridge

    return run_bridge(args.file, args.overrides, log_format=args.log_format, web=args.web)


# -- send -------------------------------------------------------------------------------------------

def add_send(commands) -> None:
    parser = commands.add_parser(
        "send",
        help="publish a message (or make a request) on a subject",
        description=(
            "Publish TEXT (words joined by spaces; '-' reads stdin) on SUBJECT. "
            "Exit status: 0 sent (or reply ok), 1 no server / timeout / no responders / error reply, 2 bad usage."
        ),
    )
    parser.add_argument("--server", "-s", dest="servers", action="append", default=[], metavar="URL",
                        help="NATS server URL (repeatable: each is tried once, in order; default $NATS_URL or nats://127.0.0.1:4222)")
    parser.add_argument("--request", "-r", action="store_true", help="wait for the reply and print it")
    parser.add_argument("--json", dest="as_json", action="store_true", help="the payload is JSON: check it first (an empty one is bad usage)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="wait this long for the reply (--request) or the server's confirmation (default 5)")
    parser.add_argument("subject", metavar="SUBJECT")
    parser.add_argument("text", nargs="*", metavar="TEXT")
    parser.set_defaults(handler=send_command)


def send_command(args: argparse.Namespace) -> int:
    from bridge.cli.send import send_message

    return send_message(args.subject, args.text, args.servers, request=args.request,
                        as_json=args.as_json, timeout=args.timeout)


# -- fleet ------------------------------------------------------------------------------------------

def add_fleet(commands) -> None:
    parser = commands.add_parser(
        "fleet",
        help="list the running bridges (NATS services protocol, $SRV)",
        description=(
            "Ask $SRV.INFO.bridge and $SRV.STATS.bridge and list every bridge that answers: device, host, version, "
            "config, connected server, uptime, messages received and errors; duplicate device ids are flagged. "
            "Exit status: 0 it ran (also with no bridges found), 2 bad usage or no server reachable."
        ),
    )
    parser.add_argument("--server", "-s", dest="servers", action="append", default=[], metavar="URL",
                        help="NATS server URL, credentials in it as user:password@ or token@ (repeatable: each is "
                             "tried once, in order; default $NATS_URL or nats://127.0.0.1:4222)")
    parser.add_argument("--json", dest="as_json", action="store_true", help="a JSON list, one object per bridge")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="wait at most this long for answers; it ends sooner once none came for 0.2s (default 2)")
    parser.set_defaults(handler=fleet_command)


def fleet_command(args: argparse.Namespace) -> int:
    from bridge.cli.fleet import run_fleet

    return run_fleet(args.servers, as_json=args.as_json, timeout=args.timeout)


# -- deploy -----------------------------------------------------------------------------------------

def add_deploy(commands) -> None:
    parser = commands.add_parser(
        "deploy",
        help="store a config for many Pis in a NATS key-value bucket (their fleet: key)",
        description=(
            "Check FILE as a stored config (version, vars, subscriptions, publications) and store it as the next "
            "revision of KEY in the bucket (created if missing: history 10, up to 3 replicas); every bridge whose "
            "bootstrap file names that key applies it. Nothing is stored when FILE is invalid. "
            "Exit status: 0 stored (or valid with --dry-run), 1 invalid file or nothing to roll back to, "
            "2 bad usage or no server reachable."
        ),
    )
    parser.add_argument("file", nargs="?", metavar="FILE")
    parser.add_argument("--key", required=True, metavar="NAME", help="the key the Pis' bootstrap files name (fleet.key)")
    parser.add_argument("--bucket", default="bridge_config", metavar="B", help="the key-value bucket (default bridge_config)")
    parser.add_argument("--server", "-s", dest="servers", action="append", default=[], metavar="URL",
                        help="NATS server URL (repeatable: each is tried once, in order; default $NATS_URL or nats://127.0.0.1:4222)")
    parser.add_argument("--dry-run", action="store_true", help="only check FILE; store nothing")
    parser.add_argument("--device-id", default="example", metavar="ID",
                        help="the ${device.id} to check FILE with (default example); each Pi uses its own")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true",
                      help="store the previous revision's content as a new revision (no FILE)")
    what.add_argument("--history", action="store_true", help="list the key's revisions with their times (no FILE)")
    parser.set_defaults(handler=deploy_command)


def deploy_command(args: argparse.Namespace) -> int:
    from bridge.cli.deploy import deploy

    return deploy(args.file, args.key, args.bucket, args.servers, dry_run=args.dry_run, rollback=args.rollback,
                  history=args.history, device_id=args.device_id)


# -- demo -------------------------------------------------------------------------------------------

def add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="local nats-server + bridge on an emulated HAT + LED web view (what `make run` runs)",
        description="Start an embedded nats-server on loopback, the bridge and the LED web view; Ctrl-C stops all.",
    )
    parser.add_argument("--config", default=None, metavar="FILE", help="default: the demo config shipped with the package (configs/demo.yml)")
    parser.add_argument("--web", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where the LED web view listens (default 127.0.0.1:8080, or a free port)")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from bridge.cli.demo import run_demo

    if args.config is None:
        return run_demo(web=args.web)
    return run_demo(args.config, web=args.web)
