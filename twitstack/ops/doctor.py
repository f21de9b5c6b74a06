"""`twitstack doctor`: run every health check, print one line each, exit 1 if any failed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from twitstack.core.config import Settings
from twitstack.core.redis import create_redis
from twitstack.ops import doctor_checks, doctor_x
from twitstack.ops.doctor_report import CheckResult, CheckStatus, DoctorContext


async def run_checks(ctx: DoctorContext) -> list[CheckResult]:
    """Every check in report order; each network step is bounded by `ctx.timeout_s`."""
    results = doctor_checks.check_config(ctx)
    redis = create_redis(ctx.settings.redis_url, max_connections=4)
    try:
        redis_results, redis_ok = await doctor_checks.check_redis(ctx, redis)
        results.extend(redis_results)
        results.extend(await doctor_x.check_x_accounts(ctx, redis, redis_ok=redis_ok))
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()
    results.append(await doctor_checks.check_scraper_accounts(ctx))
    results.extend(doctor_checks.check_ports(ctx))
    results.extend(doctor_checks.check_data_dirs(ctx))
    return results


def exit_code(results: Sequence[CheckResult]) -> int:
    """1 if anything failed, else 0 (warnings do not fail the doctor)."""
    return 1 if any(r.status is CheckStatus.FAIL for r in results) else 0


def summary(results: Sequence[CheckResult]) -> str:
    """The closing line: counts per status."""
    counts = {status: sum(r.status is status for r in results) for status in CheckStatus}
    return (
        f"{counts[CheckStatus.OK]} ok, {counts[CheckStatus.WARN]} warnings, "
        f"{counts[CheckStatus.FAIL]} failed"
    )


def doctor_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack doctor [--timeout S]`."""
    loaded = getattr(args, "loaded_settings", None)
    ctx = DoctorContext(
        settings=settings,
        config_path=getattr(loaded, "config_path", None),
        timeout_s=args.timeout,
    )
    results = anyio.run(run_checks, ctx)
    for result in results:
        print(result.render())
    print(summary(results))
    code = exit_code(results)
    if code:
        print("twitstack: doctor found problems (FAIL lines above)", file=sys.stderr)
    return code
