"""The `twitstack` command: parse arguments, load settings once, configure logging, dispatch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

import anyio
from pydantic import BaseModel

# First of twitstack's imports: structlog and httpx without the console extras (see there).
from twitstack import __version__, _lean_imports  # noqa: F401
from twitstack.core.config import Settings, load
from twitstack.core.config_show import render_settings
from twitstack.core.errors import ConfigError, TwitstackError, root_cause
from twitstack.core.logging import configure_logging, get_logger, redact
from twitstack.core.secrets import configure_secrets
from twitstack.core.service import ServiceBuilder

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LONG_RUNNING_COMMANDS = frozenset({"run", "demo", "sandbox"})
Handler = Callable[[argparse.Namespace, Settings], int]

# Modules that add their own subcommands through `add_commands(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "twitstack.demo.commands",
    "twitstack.moderation.commands",
    "twitstack.notifier.commands",
    "twitstack.ops.acl_commands",
    "twitstack.ops.commands",
    "twitstack.ops.spend_commands",
    "twitstack.scraper.commands",
    "twitstack.sandbox.commands",
    "twitstack.writer.commands",
    "twitstack.writes.key_commands",
    "twitstack.writes.x_account_commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $TWITSTACK_CONFIG, ./twitstack.toml, "
        "/etc/twitstack/twitstack.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="twitstack",
        description="Scrape X, moderate writes, execute approved ones exactly once.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"twitstack {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        help="run only these services (scraper, writer, moderation, notifier); default: all "
        "(the notifier when [notifier] configures a channel)",
    )
    run.set_defaults(handler=_run)

    config = sub.add_parser("config", parents=[common], help="check or show the settings")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", parents=[common], help="validate the settings")
    check.set_defaults(handler=_config_check, needs_valid_settings=False)
    show = config_sub.add_parser("show", parents=[common], help="print the effective settings")
    show.set_defaults(handler=_config_show)

    for module_name in COMMAND_MODULES:
        import_module(module_name).add_commands(sub)
    _accept_config_anywhere(parser)
    return parser


def _accept_config_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let `--config PATH` stand after any (sub)command too: `twitstack doctor --config P`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "--config" not in child._option_string_actions:
                    child.add_argument(
                        "--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="TOML config file (see `twitstack --help`)",
                    )  # fmt: skip
                _accept_config_anywhere(child)


def main(
    argv: Sequence[str] | None = None, *, catalog: Mapping[str, ServiceBuilder] | None = None
) -> int:
    """Entry point of the `twitstack` console script; `catalog` replaces the real services."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.catalog = catalog
    if args.command == "run":
        _validate_only(parser, args.only, list(catalog) if catalog is not None else None)
    config_path = getattr(args, "config", None)
    try:
        loaded = load(config_path)
    except ConfigError as exc:
        if not getattr(args, "needs_valid_settings", True):
            return _report_config_problems(exc)
        for line in exc.problems:
            print(f"twitstack: config: {line}", file=sys.stderr)
        return EXIT_USAGE
    args.loaded_settings = loaded
    settings = loaded.settings
    # The daemons log to stdout (journald, jq); one-shot commands keep stdout for their output.
    log_stream = sys.stdout if args.command in LONG_RUNNING_COMMANDS else sys.stderr
    configure_logging(
        settings.env, settings.log_level, secrets=_secret_values(settings), stream=log_stream
    )
    configure_secrets(settings)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except TwitstackError as exc:
        print(f"twitstack: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _validate_only(
    parser: argparse.ArgumentParser, only: str | None, valid: list[str] | None
) -> None:
    from twitstack.supervisor import SERVICE_NAMES

    if only is None:
        return
    valid = list(SERVICE_NAMES) if valid is None else valid
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        parser.error(
            f"--only: unknown service {', '.join(unknown) or '(none given)'}; "
            f"valid names: {', '.join(valid)}"
        )


def _secret_values(settings: Settings) -> list[str]:
    """Every SecretStr value in the settings, so logging can redact it."""
    found: list[str] = []

    def walk(value: Any) -> None:
        getter = getattr(value, "get_secret_value", None)
        if getter is not None:
            found.append(getter())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    return found


def _report_config_problems(exc: ConfigError) -> int:
    for line in exc.problems:
        print(line, file=sys.stderr)
    return EXIT_USAGE


def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    source = args.loaded_settings.config_path or "defaults and environment"
    print(f"config ok ({source})")
    return EXIT_OK


def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    sys.stdout.write(render_settings(args.loaded_settings))
    return EXIT_OK


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from twitstack.supervisor import load_before_loop, run_daemon

    only = [name.strip() for name in args.only.split(",")] if args.only else None
    load_before_loop(settings, only=only, catalog=args.catalog)
    try:
        anyio.run(lambda: run_daemon(settings, only=only, catalog=args.catalog))
    except (TwitstackError, BaseExceptionGroup) as exc:
        leaf = root_cause(exc)
        if not isinstance(leaf, TwitstackError):
            get_logger("twitstack.cli").error("daemon.crashed", exc_info=leaf)
        for line in str(leaf).splitlines() or [""]:
            print(f"twitstack: {redact(line)}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
