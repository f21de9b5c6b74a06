"""`twitstack sandbox`: serve the fake X API on loopback for dry runs against a safe target.

The fake itself is imported when the command runs: building the CLI must stay cheap.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

import anyio

from twitstack.core.config import Settings
from twitstack.core.errors import TwitstackError

if TYPE_CHECKING:
    from twitstack.sandbox.xapi.config import FaultKind, XApiSandboxConfig


def _fault_rate(raw: str) -> tuple[FaultKind, float]:
    from twitstack.sandbox.xapi.config import FaultKind

    kind, sep, rate = raw.partition("=")
    try:
        return FaultKind(kind), float(rate) if sep else 1.0
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise argparse.ArgumentTypeError(f"expected KIND=RATE with KIND one of {kinds}") from None


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `sandbox`."""
    parser = subparsers.add_parser("sandbox", help="serve a fake X API v2 for dry runs")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8099, help="port (0 = any free port)")
    parser.add_argument(
        "--fault", type=_fault_rate, action="append", default=[], metavar="KIND=RATE",
        help="inject a fault with this probability on writes, e.g. commit_then_503=0.1",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument(
        "--no-rate-limits", action="store_true",
        help="answer every request without rate-limit windows (load tests)",
    )  # fmt: skip
    parser.add_argument(
        "--duplicate-window", type=float, default=None, metavar="SECONDS",
        help="refuse identical text within this window (default: a day; 0 turns it off)",
    )  # fmt: skip
    parser.set_defaults(handler=run_sandbox)


def sandbox_config(args: argparse.Namespace) -> XApiSandboxConfig:
    """The sandbox configuration the command line asks for."""
    from twitstack.sandbox.xapi.config import Endpoint, FaultSettings, XApiSandboxConfig

    options: dict[str, object] = {"faults": FaultSettings(rates=dict(args.fault), seed=args.seed)}
    if args.no_rate_limits:
        options["rate_limits"] = {endpoint: () for endpoint in Endpoint}
    if args.duplicate_window is not None:
        options["duplicate_window_s"] = args.duplicate_window
        if args.duplicate_window == 0:
            options["duplicate_lookback_posts"] = 0
    return XApiSandboxConfig.model_validate(options)


async def _serve(args: argparse.Namespace) -> None:
    from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN
    from twitstack.sandbox.xapi.server import open_xapi_sandbox

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_xapi_sandbox(sandbox_config(args), host=args.host, port=args.port) as sb:
            print(f"fake X API at {sb.base_url} (bearer token {DEFAULT_BEARER_TOKEN})")
            print(f"inspect it at {sb.base_url}/_sandbox/state; Ctrl-C stops it", flush=True)
            async for _ in signals:
                break


def run_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; exit code 0, or 1 with a one-line error."""
    try:
        anyio.run(_serve, args)
    except (TwitstackError, ValueError) as exc:
        print(f"twitstack sandbox: {exc}", file=sys.stderr)
        return 1
    return 0
