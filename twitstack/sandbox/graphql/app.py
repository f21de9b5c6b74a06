"""The GraphQL fake: a Starlette app answering twscrape's operations from a synthetic corpus."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from twitstack.sandbox.graphql import shapes
from twitstack.sandbox.graphql.corpus import SynthCorpus, SynthTweet
from twitstack.sandbox.graphql.faults import FAULT_KINDS, Fault, FaultKind, fault_response

_RATE_WINDOW_S = 900
_REPLIES_PAGE = 10
_VIA_PROXY = "twitstack.via_proxy"


@dataclass(frozen=True)
class SeenRequest:
    """One request the fake answered, for tests and the inspection API."""

    op: str
    account: str | None
    variables: dict[str, Any]
    status: int
    via_proxy: bool = False  # arrived in absolute form, i.e. through the fake acting as a proxy


@dataclass
class GraphQLFake:
    """The fake's state: corpus, scripted faults, per-account rate windows and a request log."""

    corpus: SynthCorpus
    clock: Callable[[], float] = time.time
    rate_limit_per_window: int = 10_000
    faults: list[Fault] = field(default_factory=list)
    requests: list[SeenRequest] = field(default_factory=list)
    # Recorded X responses served verbatim for the first page of an operation (key: the op, or
    # "TweetDetail:<focal id>"); later pages of it are empty, ending twscrape's paging.
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)  # TweetDetail answers these with a tombstone
    _windows: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def inject(
        self, kind: FaultKind, *, op: str | None = None, account: str | None = None, times: int = 1
    ) -> Fault:
        """Answer the next `times` matching requests with a `kind` failure."""
        fault = Fault(kind=kind, op=op, account=account, times=times)
        self.faults.append(fault)
        return fault

    def record(self, op: str, body: dict[str, Any], *, focal_tweet_id: int | None = None) -> None:
        """Answer `op` (TweetDetail: for one focal tweet) with a response X really sent."""
        self.recorded[f"{op}:{focal_tweet_id}" if focal_tweet_id else op] = body

    def delete(self, tweet_id: int) -> None:
        """The tweet's author deleted it: TweetDetail shows a tombstone where it was."""
        self.deleted.add(tweet_id)

    def seen(self, op: str | None = None) -> list[SeenRequest]:
        return [r for r in self.requests if op is None or r.op == op]

    def answer(
        self, op: str, variables: dict[str, Any], account: str | None, *, via_proxy: bool = False
    ) -> Response:
        """Answer one GraphQL operation (already authenticated) and log it."""
        rep = self._fault(op, account) or self._data(op, variables, account)
        self.requests.append(SeenRequest(op, account, variables, rep.status_code, via_proxy))
        return rep

    def _fault(self, op: str, account: str | None) -> Response | None:
        for fault in self.faults:
            if fault.matches(op, account):
                fault.times -= 1
                return fault_response(fault, self.clock())
        return None

    def _rate_headers(self, op: str, account: str | None) -> dict[str, str]:
        now = self.clock()
        key = (account or "-", op)
        start, used = self._windows.get(key, (now, 0))
        if now - start >= _RATE_WINDOW_S:
            start, used = now, 0
        used += 1
        self._windows[key] = (start, used)
        return {
            "x-rate-limit-limit": str(self.rate_limit_per_window),
            "x-rate-limit-remaining": str(max(0, self.rate_limit_per_window - used)),
            "x-rate-limit-reset": str(int(start + _RATE_WINDOW_S)),
        }

    def _data(self, op: str, v: dict[str, Any], account: str | None) -> Response:
        headers = self._rate_headers(op, account)
        body = self._body(op, v)
        if body is None:
            # Unknown operations get a 400, never a 404: a 404 makes twscrape refetch x.com.
            body, status = shapes.error_body(0, f"unknown operation {op}"), 400
        else:
            status = 200
        return JSONResponse(body, status_code=status, headers=headers)

    def _body(self, op: str, v: dict[str, Any]) -> dict[str, Any] | None:
        recorded = self.recorded.get(f"{op}:{v.get('focalTweetId')}") or self.recorded.get(op)
        if recorded is not None:
            return recorded if not v.get("cursor") else shapes.search_page([])
        c = self.corpus
        count = int(v.get("count", 20))
        cursor = v.get("cursor")
        if op == "SearchTimeline":
            tweets = c.search(str(v.get("rawQuery", "")))
            return shapes.search_page(_page(tweets, cursor, count))
        if op in ("UserTweets", "UserTweetsAndReplies"):
            tweets = c.timeline(int(v.get("userId", 0)))
            return shapes.user_tweets_page(_page(tweets, cursor, count))
        if op == "ListLatestTweetsTimeline":
            tweets = c.list_timeline(int(v.get("listId", 0)))
            return shapes.list_page(_page(tweets, cursor, count))
        if op == "TweetDetail":
            return self._tweet_detail(int(v.get("focalTweetId", 0)), cursor)
        if op == "UserByScreenName":
            return shapes.user_page(c.user_by_name(str(v.get("screen_name", ""))))
        if op == "UserByRestId":
            return shapes.user_page(c.user_by_id(int(v.get("userId", 0))))
        return None

    def _tweet_detail(self, tweet_id: int, cursor: str | None) -> dict[str, Any]:
        if tweet_id in self.deleted:
            return shapes.tweet_detail_page([shapes.tombstone_entry(tweet_id)])
        focal = self.corpus.by_id(tweet_id)
        if focal is None:
            body = shapes.error_body(144, "_Missing: No status found with that ID.")
            return {**body, "data": {}}
        replies = self.corpus.replies_to(tweet_id)
        offset = _offset(cursor)
        chunk = replies[offset : offset + _REPLIES_PAGE]
        entries = [] if cursor else [shapes.tweet_entry(focal)]
        entries += [shapes.conversation_entry(t) for t in chunk]
        if offset + _REPLIES_PAGE < len(replies):
            entries.append(shapes.cursor_entry(f"o{offset + _REPLIES_PAGE}", "ShowMoreThreads"))
        return shapes.tweet_detail_page(entries)


def _offset(cursor: str | None) -> int:
    if cursor and cursor.startswith("o") and cursor[1:].isdigit():
        return int(cursor[1:])
    return 0


def _page(tweets: Sequence[SynthTweet], cursor: str | None, count: int) -> list[dict[str, Any]]:
    offset = _offset(cursor)
    chunk = tweets[offset : offset + max(1, count)]
    entries = [shapes.tweet_entry(t) for t in chunk]
    entries.append(shapes.cursor_entry(f"top{offset}", "Top"))
    if chunk and offset + len(chunk) < len(tweets):
        entries.append(shapes.cursor_entry(f"o{offset + len(chunk)}"))
    return entries


class ForwardProxyMiddleware:
    """Lets the fake double as a loopback HTTP forward proxy.

    A client configured with the fake as its proxy sends `GET http://host/path` (absolute
    form); such a request is served as if asked directly and marked `via_proxy`, so tests can
    route a scraping account through a "proxy" and see which requests went through it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "://" in scope["path"]:
            path = urlsplit(scope["path"]).path or "/"
            scope = {**scope, "path": path, "raw_path": path.encode(), _VIA_PROXY: True}
        await self.app(scope, receive, send)


def _account_of(request: Request) -> tuple[str | None, Response | None]:
    """The auth_token identifying the account, or an X-style refusal of the request."""
    token = request.cookies.get("auth_token")
    csrf = request.cookies.get("ct0")
    if not request.headers.get("authorization", "").startswith("Bearer ") or not token:
        return None, JSONResponse(shapes.error_body(32, "Could not authenticate you."), 401)
    if not csrf or request.headers.get("x-csrf-token") != csrf:
        body = shapes.error_body(353, "This request requires a matching csrf cookie and header.")
        return token, JSONResponse(body, 403)
    return token, None


def create_app(fake: GraphQLFake | None = None, *, seed: int = 0) -> Starlette:
    """The ASGI app; `app.state.fake` is the GraphQLFake behind it."""
    state = fake or GraphQLFake(SynthCorpus.generate(seed=seed))

    async def graphql(request: Request) -> Response:
        op = request.path_params["op"]
        via_proxy = bool(request.scope.get(_VIA_PROXY))
        account, refusal = _account_of(request)
        if refusal is not None:
            state.requests.append(SeenRequest(op, account, {}, refusal.status_code, via_proxy))
            return refusal
        try:
            variables = json.loads(request.query_params.get("variables", "{}"))
        except json.JSONDecodeError:
            return JSONResponse(shapes.error_body(0, "variables is not JSON"), 400)
        return state.answer(op, variables, account, via_proxy=via_proxy)

    async def list_requests(_: Request) -> Response:
        return JSONResponse([asdict(r) for r in state.requests])

    async def stats(_: Request) -> Response:
        counts = Counter(f"{r.op} {r.status}" for r in state.requests)
        return JSONResponse({"tweets": len(state.corpus.tweets), "requests": dict(counts)})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
            return JSONResponse({"faults": 0})
        body = await request.json()
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            return JSONResponse({"error": f"kind must be one of {list(FAULT_KINDS)}"}, 422)
        fault = state.inject(
            cast(FaultKind, kind),
            op=body.get("op"),
            account=body.get("account"),
            times=int(body.get("times", 1)),
        )
        return JSONResponse(asdict(fault), 201)

    async def add_tweets(request: Request) -> Response:
        body = await request.json()
        added = state.corpus.add_tweets(
            int(body.get("count", 1)), text=body.get("text"), malformed=bool(body.get("malformed"))
        )
        return JSONResponse({"ids": [str(t.id) for t in added]}, 201)

    app = Starlette(
        routes=[
            Route("/i/api/graphql/{qid}/{op}", graphql, methods=["GET", "POST"]),
            Route("/_sandbox/requests", list_requests, methods=["GET"]),
            Route("/_sandbox/stats", stats, methods=["GET"]),
            Route("/_sandbox/faults", faults, methods=["POST", "DELETE"]),
            Route("/_sandbox/tweets", add_tweets, methods=["POST"]),
        ],
        middleware=[Middleware(ForwardProxyMiddleware)],
    )
    app.state.fake = state
    return app
