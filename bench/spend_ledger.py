"""What the spend ledger adds to each send's reservation: Redis commands, bytes, Redis CPU µs
and round-trip µs per request, with no ledger, the ledger alone, and the ledger with caps.

Bytes: the ledger keeps two hashes per UTC day and month whatever the volume (fields per
account and action), so its memory does not grow per request; `ledger keys B` is MEMORY USAGE
of those keys after the run.

The writer reserves rate-limit room for every send in one Lua call (`budget_reserve`, fused
into `begin_sending` on the fast path); the ledger's check and charge run inside that same
call, so it adds no round trip. This bench calls `budget_reserve` N times per mode against a
private redis-server, with the accounts round-robin, and reads the INFO commandstats, memory
and CPU deltas:

- `none`: the rate-limit reservation alone (no spend keys: what the writer did before);
- `ledger`: plus the charge to the day and month rollups (no caps configured);
- `capped`: plus four caps (account and total, day and month) that are never reached.

Usage: python bench/spend_ledger.py [--requests 20000] [--accounts 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import redis
from common import redis_server
from rig import RedisCost

from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import budget_keys
from twitstack.writes.scripts import lua_source
from twitstack.writes.spend import Periods, spend_args, spend_keys

ENDPOINT = "tweets.create"
# Inside the scripts, besides the EVALSHA itself: commandstats counts them all.
_SCRIPT_CALLS = ("evalsha", "eval")


def _settings(capped: bool, accounts: list[str]) -> SpendSettings:
    if not capped:
        return SpendSettings()
    never = {"daily_usd": 1e5, "monthly_usd": 1e5}
    caps = {"total": never, "accounts": dict.fromkeys(accounts, never)}
    return SpendSettings.model_validate(caps)


def run_mode(url: str, mode: str, requests: int, accounts: list[str]) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    client.flushall()
    script = client.register_script(lua_source("budget_reserve"))
    settings = _settings(mode == "capped", accounts)
    now = time.time()
    periods = Periods.at(now)
    calls = []
    for account in accounts:
        keys = budget_keys(account, ENDPOINT)
        args: list[str | int] = [repr(now), 120_000]
        if mode != "none":
            keys += spend_keys(account, periods)
            args += spend_args(settings, account, "post", 15_000, periods)
        calls.append((keys, args))
    script(keys=calls[0][0], args=calls[0][1])  # loads the script; not measured
    client.config_resetstat()
    memory = int(client.info("memory")["used_memory"])
    before = RedisCost.read(client)
    started = time.perf_counter()
    for i in range(requests):
        keys, args = calls[i % len(calls)]
        reply = script(keys=keys, args=args)
        granted = reply[0] if isinstance(reply, list) else reply
        if granted not in (b"0", 0):
            raise SystemExit(f"{mode}: request {i} was not granted: {reply!r}")
    elapsed = time.perf_counter() - started
    after = RedisCost.read(client)
    grown = int(client.info("memory")["used_memory"]) - memory
    inner = sum(
        n - before.calls.get(name, 0)
        for name, n in after.calls.items()
        if name not in (*_SCRIPT_CALLS, "info", "config|resetstat", "config")
    )
    ledger_keys = [k for k in client.scan_iter(match="twitstack:writer:spend:*")]
    ledger_bytes = sum(int(client.memory_usage(k) or 0) for k in ledger_keys)
    evals = sum(after.calls.get(name, 0) - before.calls.get(name, 0) for name in _SCRIPT_CALLS)
    client.close()
    return {
        "round_trips_per_request": evals / requests,
        "commands_in_lua_per_request": inner / requests,
        "redis_cpu_us_per_request": (after.cpu_s - before.cpu_s) / requests * 1e6,
        "round_trip_us_per_request": elapsed / requests * 1e6,
        "bytes_per_request": grown / requests,
        "bytes_total": float(grown),
        "ledger_key_bytes": float(ledger_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="also print a RESULT line")
    options = parser.parse_args()
    accounts = [f"acct{i}" for i in range(options.accounts)]
    rows = {}
    with redis_server() as url:
        for mode in ("none", "ledger", "capped", "none"):
            rows[mode] = run_mode(url, mode, options.requests, accounts)  # "none" twice: warm
    base = rows["none"]
    print(f"{options.requests} reservations over {options.accounts} accounts, one redis-server")
    print(f"{'mode':8} {'EVALSHA/req':>11} {'cmds in Lua/req':>16} {'Redis CPU µs':>13} "
          f"{'RTT µs':>8} {'ledger keys B':>14}")  # fmt: skip
    for mode, row in rows.items():
        print(
            f"{mode:8} {row['round_trips_per_request']:>11.2f} "
            f"{row['commands_in_lua_per_request']:>16.1f} {row['redis_cpu_us_per_request']:>13.1f} "
            f"{row['round_trip_us_per_request']:>8.1f} {row['ledger_key_bytes']:>14.0f}"
        )
    for mode in ("ledger", "capped"):
        row = rows[mode]
        more = {name: row[name] - base[name] for name in row}
        print(
            f"{mode} adds: {more['round_trips_per_request']:+.2f} round trips, "
            f"{more['commands_in_lua_per_request']:+.1f} Redis commands, "
            f"{more['redis_cpu_us_per_request']:+.1f} µs Redis CPU, "
            f"{more['round_trip_us_per_request']:+.1f} µs round trip per request; the ledger's "
            f"keys hold {row['ledger_key_bytes']:.0f} bytes in all (not per request: 2 hashes "
            "per period, 3 fields per account and action)"
        )
    if options.json:
        print("RESULT " + json.dumps({"requests": options.requests, "rows": rows}))


if __name__ == "__main__":
    main()
