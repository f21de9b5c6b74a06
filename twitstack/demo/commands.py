"""`twitstack demo`: its argument parsing and its banner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from twitstack.core.config import Settings

if TYPE_CHECKING:
    from twitstack.demo.runner import DemoEndpoints


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack demo`."""
    demo = subparsers.add_parser(
        "demo",
        help="run the whole daemon embedded (no Redis, no X account needed)",
        description="Runs the real scraper, writer and moderation services with an in-process "
        "Redis and the fake X API on loopback, seeded with requests to review.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="where to listen (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="moderation UI port (default: 8000)")
    demo.add_argument(
        "--data-dir", type=Path, help="keep state here (default: a new temporary directory)"
    )
    demo.add_argument(
        "--scrape-interval", type=float, default=60.0, metavar="SECONDS",
        help="how often the sample scrape job runs (default: 60)",
    )  # fmt: skip
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: fakeredis, twscrape and the fakes are only needed when the demo runs.
    from twitstack.demo.runner import DemoOptions, run_demo

    options = DemoOptions(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        scrape_interval_s=args.scrape_interval,
    )
    anyio.run(lambda: run_demo(options, announce=_print_banner))
    return 0


def _print_banner(endpoints: DemoEndpoints) -> None:
    lines = [
        "",
        "twitstack demo is running (Ctrl-C to stop)",
        f"  moderation UI   {endpoints.ui_url}",
        f"  log in as       {endpoints.admin_user} / {endpoints.admin_password}",
        f"  fake X API      {endpoints.x_api_url}/_sandbox/posts",
        f"  fake X GraphQL  {endpoints.graphql_url}",
        *(f"  {name} metrics  {url}" for name, url in sorted(endpoints.metrics_urls.items())),
        f"  moderation metrics {endpoints.ui_url}metrics",
        f"  state           {endpoints.data_dir}",
        "",
        "Approve a request in the UI: the writer posts it to the fake X and History shows its id.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
