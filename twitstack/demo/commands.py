"""`twitstack demo`: its argument parsing, its banner, and its one-line start-up errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from twitstack.core.config import Settings
from twitstack.core.errors import PortInUseError, TwitstackError, root_cause

if TYPE_CHECKING:
    from twitstack.demo.runner import DemoEndpoints

EXIT_OK, EXIT_FAILURE = 0, 1


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack demo`."""
    demo = subparsers.add_parser(
        "demo",
        help="run the whole daemon embedded (no Redis, no X account needed)",
        description="Runs the real scraper, writer, moderation and notifier services with an "
        "in-process "
        "Redis (also on a loopback port, for the CLI) and the fake X API on loopback, seeded "
        "with requests to review.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="where to listen (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="moderation UI port (default: 8000)")
    demo.add_argument(
        "--redis-port", type=int, default=0, metavar="PORT",
        help="the demo Redis's TCP port, for the CLI (default: any free port)",
    )  # fmt: skip
    demo.add_argument(
        "--data-dir", type=Path,
        help="keep state and the log here (default: a temporary directory, removed on exit)",
    )  # fmt: skip
    demo.add_argument(
        "--scrape-interval", type=float, default=60.0, metavar="SECONDS",
        help="how often the sample scrape jobs run (default: 60)",
    )  # fmt: skip
    demo.add_argument(
        "--verbose", action="store_true", help="log to the terminal instead of demo.log"
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: fakeredis, twscrape and the fakes are only needed when the demo runs.
    from twitstack.demo.runner import DemoOptions, run_demo
    from twitstack.demo.workspace import demo_workspace

    with demo_workspace(
        args.data_dir, env=settings.env, level=settings.log_level, verbose=args.verbose
    ) as workspace:
        options = DemoOptions(
            data_dir=workspace.data_dir,
            host=args.host,
            port=args.port,
            redis_port=args.redis_port,
            scrape_interval_s=args.scrape_interval,
            log_file=workspace.log_file,
            temporary=workspace.temporary,
        )
        try:
            anyio.run(lambda: run_demo(options, announce=_print_banner))
        except (TwitstackError, BaseExceptionGroup) as exc:
            leaf = root_cause(exc)
            if not isinstance(leaf, TwitstackError):
                raise
            print(f"twitstack: {_with_fix(leaf, args)}", file=sys.stderr)
            return EXIT_FAILURE
    return EXIT_OK


def _with_fix(error: TwitstackError, args: argparse.Namespace) -> str:
    """The error's one line, plus the option that gets past a busy port."""
    if isinstance(error, PortInUseError):
        if error.port == args.port:
            return f"{error}; pick another with --port (twitstack demo --port {args.port + 1})"
        if args.redis_port and error.port == args.redis_port:
            return f"{error}; pick another with --redis-port, or leave it out for any free port"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _print_banner(endpoints: DemoEndpoints) -> None:
    ui = endpoints.ui_url
    x = endpoints.x_api_url
    where = "removed on exit" if endpoints.temporary else "kept"
    lines = [
        "",
        "twitstack demo is running (Ctrl-C to stop)",
        f"  moderation UI    {ui}",
        f"  log in as        {endpoints.admin_user} / {endpoints.admin_password}",
        f"  review queue     {ui}queue   (seeded requests, scraper drafts, one X would refuse)",
        f"  history          {ui}history   dead letters {ui}dead-letters",
        f"  notifications    {endpoints.inbox_url}   (what moderators would be told: failed,"
        " needs review, waiting over 1 min)",
        f"  fake X: posts    {x}/_sandbox/posts",
        f"  fake X: DMs      {x}/_sandbox/dms",
        f"  fake X GraphQL   {endpoints.graphql_url}",
        f"  Redis            {endpoints.redis_url}",
        f"  try the CLI      TWITSTACK_REDIS_URL={endpoints.redis_url} twitstack queue stats",
        '                   (also: enqueue tweet "hello", doctor)',
        *(f"  {name} metrics  {url}" for name, url in sorted(endpoints.metrics_urls.items())),
        f"  moderation metrics {ui}metrics",
        f"  logs             {endpoints.log_file or 'this terminal (--verbose)'}",
        f"  state            {endpoints.data_dir} ({where})",
        "",
        "Approve a request in the UI: the writer posts it to the fake X and History shows its id.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
