"""How twitstack watches twscrape: every response, the 404s and transaction-id failures
twscrape swallows, its log; and the sandbox's stubbed transaction ids."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import twscrape
import twscrape.api as tws_api
from twscrape.logger import logger as tws_logger
from twscrape.queue_client import QueueClient, XClIdGenStore
from twscrape.xclid import XClIdError, XClIdGen, XClIdParseError

from twitstack.core.logging import get_logger
from twitstack.scraper.models import (
    ResponseEvent,
    Signal,
)

log = get_logger("twitstack.scraper.twscrape")
ResponseObserver = Callable[[ResponseEvent], None]

_DEFAULT_GQL_URL = tws_api.GQL_URL
_BAN_CODES = frozenset({32, 326})
_ACCOUNT_STATUSES = frozenset({401, 403, 429})  # about the account, judged above
_TRANSPORT_LOG = re.compile(r"username=(?P<user>[^;]+); queue=(?P<queue>[^;]+);.*proxy=(?P<p>\w+)")
_state: dict[str, Any] = {"sink": None, "observer": None, "xclid_broken": False}
_REAL_XCLID_GET = XClIdGenStore.__dict__["get"].__func__
_SANDBOX_XCLID = XClIdGen(vk_bytes=list(range(48)), anim_key="00")


class _ObservedQueueClient(QueueClient):  # type: ignore[misc]
    """twscrape's QueueClient, reporting every response (with its account) before judging it."""

    async def _check_rep(self, rep: Any) -> None:
        observer = getattr(self.pool, "observer", None)
        if observer is not None:
            observer(classify_response(rep, self.queue))
        await super()._check_rep(rep)

    async def _get_ctx(self) -> Any:
        ctx = await super()._get_ctx()
        observer = getattr(self.pool, "observer", None)
        if ctx is not None and observer is not None and not isinstance(ctx.clt, _Observed404s):
            ctx.clt = _Observed404s(ctx.clt, observer, self.queue, ctx.acc.username)
        return ctx


class _Observed404s:
    """Wraps an account's HTTP client to see the 404s twscrape consumes before _check_rep.

    twscrape answers a 404 by regenerating the transaction id and retrying three times, then
    yields nothing as if all were well: the way X's changes (stale query ids, a new
    transaction-id scheme) show, and the only point where they can be seen.
    """

    def __init__(self, inner: Any, observer: ResponseObserver, queue: str, username: str):
        self._inner, self._observer = inner, observer
        self._queue, self._username = queue, username

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        rep = await self._inner.request(method, url, **kwargs)
        if rep.status_code == 404:
            empty = not rep.content.strip()
            self._observer(
                ResponseEvent(
                    self._username, self._queue, 404, Signal.NOT_FOUND, at=time.time(),
                    empty_body=empty,
                )
            )  # fmt: skip
            log.warning(
                "scraper.graphql_not_found", account=self._username, queue=self._queue,
                empty_body=empty,
            )  # fmt: skip
        return rep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ObservedPool(twscrape.AccountsPool):  # type: ignore[misc]
    observer: ResponseObserver | None = None


def classify_response(rep: Any, queue: str) -> ResponseEvent:
    """Turn one twscrape Response into a ResponseEvent (same rules as twscrape's _check_rep)."""
    status = int(rep.status_code)
    username = str(getattr(rep, "__username", "") or "")
    headers = rep.headers
    html = "text/html" in headers.get("content-type", "")
    codes: tuple[int, ...] = ()
    has_data = False
    if not html:
        try:
            body = rep.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            errors = body.get("errors") or []
            codes = tuple(int(e.get("code", -1)) for e in errors if isinstance(e, Mapping))
            data = body.get("data")
            has_data = isinstance(data, Mapping) and any(v is not None for v in data.values())
    remaining = int(headers.get("x-rate-limit-remaining", -1))
    reset = int(headers.get("x-rate-limit-reset", -1))
    if html and status >= 400:
        signal = Signal.BLOCKED
    elif 336 in codes:
        signal = Signal.FEATURES_OUTDATED
    elif remaining == 0 and reset > 0:
        signal = Signal.RATE_LIMITED
    elif 64 in codes:
        signal = Signal.SUSPENDED
    elif _BAN_CODES & set(codes) or (88 in codes) or (status == 403 and not codes):
        signal = Signal.AUTH_FAILED
    elif status == 404:
        signal = Signal.NOT_FOUND
    elif 400 <= status < 500 and status not in _ACCOUNT_STATUSES:
        signal = Signal.BAD_REQUEST
    elif codes and not has_data and 144 not in codes:
        signal = Signal.API_ERROR
    elif status >= 400 and not codes:
        signal = Signal.SERVER_ERROR
    else:
        signal = Signal.OK
    empty = not bytes(rep.content or b"").strip()
    return ResponseEvent(username, queue, status, signal, codes, at=time.time(), empty_body=empty)


def _loguru_sink(message: Any) -> None:
    record = message.record
    text = str(record["message"])
    level = record["level"].name
    method = {"ERROR": log.error, "CRITICAL": log.error, "WARNING": log.warning}.get(
        level, log.debug
    )
    method("twscrape.logged", level=level.lower(), message=text)
    # Transport/proxy failures never reach _check_rep; twscrape only logs them.
    if "cooling account" in text and (m := _TRANSPORT_LOG.search(text)):
        observer = _state["observer"]
        if observer is not None:
            observer(
                ResponseEvent(
                    m["user"].strip(),
                    m["queue"].strip(),
                    0,
                    Signal.TRANSPORT,
                    at=time.time(),
                    proxy=m["p"] == "True",
                )
            )


def configure_twscrape(*, graphql_url: str | None = None) -> None:
    """Route twscrape's loguru output into structlog, install response observation and
    (for the sandbox only) point it at a GraphQL fake with a stubbed transaction-id generator."""
    os.environ["TWS_TELEMETRY"] = "0"
    if _state["sink"] is None:
        tws_logger.remove()
        _state["sink"] = tws_logger.add(
            _loguru_sink, level="INFO", filter=lambda r: r["name"].startswith("twscrape")
        )
    tws_api.QueueClient = _ObservedQueueClient
    tws_api.GQL_URL = f"{graphql_url}/i/api/graphql" if graphql_url else _DEFAULT_GQL_URL
    # XClIdGen.create() fetches x.com pages and JS bundles; the fake needs no real ids.
    source = _sandbox_transaction_ids if graphql_url else _REAL_XCLID_GET
    XClIdGenStore.get = classmethod(_observed_transaction_ids(source))


def _observed_transaction_ids(source: Callable[..., Any]) -> Callable[..., Any]:
    """XClIdGenStore.get, reporting failures: twscrape logs them and yields nothing."""

    async def get(
        cls: Any, username: str, proxy: Any = None, cookies: Any = None, fresh: bool = False
    ) -> XClIdGen:
        try:
            return await source(cls, username, proxy, cookies, fresh)
        except XClIdError as exc:
            log.warning("scraper.transaction_id_failed", account=username, error=str(exc))
            observer = _state["observer"]
            if observer is not None:
                observer(ResponseEvent(username, "", 0, Signal.TRANSACTION_ID, at=time.time()))
            raise

    return get


async def _sandbox_transaction_ids(
    cls: Any, username: str, proxy: Any = None, cookies: Any = None, fresh: bool = False
) -> XClIdGen:
    if _state["xclid_broken"]:
        raise XClIdParseError("X web scripts not found (sandbox: transaction ids broken)")
    return _SANDBOX_XCLID


def break_sandbox_transaction_ids(broken: bool) -> None:
    """Make the sandbox's transaction-id generator fail the way twscrape's does when X changes
    its web app (twscrape #312): every request is given up before it is sent."""
    _state["xclid_broken"] = broken


def set_transport_observer(observer: ResponseObserver | None) -> None:
    """Where transport errors seen in twscrape's log are reported (one per process)."""
    _state["observer"] = observer
