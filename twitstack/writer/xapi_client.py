"""The only module that speaks HTTP to X: an async client for the daemon, a sync one for scripts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from json import dumps as json_dumps
from typing import Any, Self

import httpx
import stamina

from twitstack.core.errors import TwitstackError
from twitstack.writer.outcome import AuthKind, Method, Outcome, OutcomeKind, classify
from twitstack.writer.x_calls import XCall, XReply, delete_call, dm_call, tweet_call
from twitstack.writer.x_reads import PostedItem, ReadBack, posted_items

DEFAULT_BASE_URL = "https://api.x.com"
_URL_CACHE_SIZE = 64
_JSON_TYPE = (b"Content-Type", b"application/json")
_HTTPX_LOG = logging.getLogger("httpx")


class XApiError(TwitstackError):
    """X answered (or failed) in a way the caller must handle; `outcome` says how."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.items_read = 0  # items of earlier pages of a paged read (X billed those)
        detail = f": {outcome.detail}" if outcome.detail else ""
        status = f"status {outcome.status}"
        super().__init__(f"X API {outcome.kind} ({outcome.reason}, {status}){detail}")


class TokenRefreshRejected(TwitstackError):
    """X's token endpoint refused the refresh token (400/401): spent, revoked or never valid."""


class BearerAuth(httpx.Auth):
    """Sends an OAuth 2.0 user access token."""

    def __init__(self, token: str) -> None:
        self.header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


@dataclass(frozen=True, slots=True)
class OAuth2Tokens:
    """A fresh OAuth 2.0 token pair from X's token endpoint."""

    access_token: str
    refresh_token: str
    expires_in_s: float


def _header_dict(headers: httpx.Headers) -> dict[str, str]:
    """`dict(headers)` in one pass (lower-case names, repeated ones joined with ", ")."""
    result: dict[str, str] = {}
    for name, value in headers.multi_items():
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class XApiClient:
    """Async X API v2 client over a given `httpx.AsyncClient`; it never closes that client."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str = DEFAULT_BASE_URL) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        # The client's own headers (User-Agent, Accept, ...), as a request of it would carry.
        self._fixed_headers = list(http.headers.raw)
        self._urls: dict[str, httpx.URL] = {}
        # httpx's own choice of transport for a URL (its mounts, the environment's proxies) is
        # a private method: if an httpx release drops it, every call takes the general path
        # (slower, same bytes) rather than guessing the transport another way.
        self._transport_for_url: Callable[[httpx.URL], httpx.AsyncBaseTransport] | None = getattr(
            http, "_transport_for_url", None
        )

    async def execute(self, call: XCall, *, auth: httpx.Auth, auth_kind: AuthKind) -> XReply:
        """Send one call and classify the result; network errors become outcomes, not raises."""
        started = time.perf_counter()
        try:
            if (
                isinstance(auth, BearerAuth)
                and self._transport_for_url is not None
                and not self._http.cookies
            ):
                status, headers, body = await self._bearer_call(
                    call, auth.header, self._transport_for_url
                )
            else:
                response = await self._http.request(
                    call.method, self._base + call.path, json=call.body, auth=auth
                )
                status, headers, body = (
                    response.status_code,
                    _header_dict(response.headers),
                    response.content,
                )
        except httpx.HTTPError as exc:
            outcome = classify(method=call.method, exception=exc, auth=auth_kind)
            return XReply(outcome, {}, time.perf_counter() - started)
        outcome = classify(
            method=call.method, status=status, headers=headers, body=body, auth=auth_kind
        )
        return XReply(outcome, headers, time.perf_counter() - started)

    async def _bearer_call(
        self,
        call: XCall,
        authorization: str,
        transport_for: Callable[[httpx.URL], httpx.AsyncBaseTransport],
    ) -> tuple[int, dict[str, str], bytes]:
        """One call with a bearer token, handed straight to the client's transport.

        What `AsyncClient.request` would send, byte for byte (the client's headers, its
        timeouts, httpx's JSON encoding), without its per-request merging, auth flow and
        redirect and cookie bookkeeping, which cost more CPU than the call itself. Only
        taken while the client holds no cookies (it would have to send them).
        """
        http = self._http
        url = self._urls.get(call.path)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:  # DM and delete paths name ids
                self._urls.clear()
            url = self._urls[call.path] = httpx.URL(self._base + call.path)
        headers = list(self._fixed_headers)
        content = None
        if call.body is not None:
            content = json_dumps(
                call.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            headers += [(b"Content-Length", str(len(content)).encode("ascii")), _JSON_TYPE]
        # Last, where httpx's auth flow puts it: the same header order as request() sends.
        headers.append((b"Authorization", authorization.encode("latin-1")))
        request = httpx.Request(
            call.method, url, headers=headers, content=content,
            extensions={"timeout": http.timeout.as_dict()},
        )  # fmt: skip
        response = await transport_for(url).handle_async_request(request)
        response.request = request
        stream = response.stream
        if "content-encoding" in response.headers or not isinstance(stream, httpx.AsyncByteStream):
            try:
                body = await response.aread()  # decoded (gzip, ...) as the client's read does
            finally:
                await response.aclose()
        else:
            # The body as sent, read without aread's decoder and chunker layers.
            try:
                body = b"".join([part async for part in stream])
            finally:
                await stream.aclose()
        if "set-cookie" in response.headers:
            http.cookies.extract_cookies(response)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"', request.method, request.url,
                response.http_version, response.status_code, response.reason_phrase,
            )  # fmt: skip
        return response.status_code, _header_dict(response.headers), body

    async def media(
        self,
        method: Method,
        path: str,
        *,
        auth: httpx.Auth,
        auth_kind: AuthKind,
        json: Mapping[str, Any] | None = None,
        files: Mapping[str, bytes] | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Outcome, dict[str, Any]]:
        """One media-upload call (JSON or multipart): its classified outcome and JSON object."""
        upload = {name: ("blob", content) for name, content in (files or {}).items()} or None
        try:
            response = await self._http.request(
                method, self._base + path, json=json, files=upload, data=data, params=params,
                auth=auth,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return classify(method=method, exception=exc, auth=auth_kind), {}
        outcome = classify(
            method=method, status=response.status_code, headers=response.headers,
            body=response.content, auth=auth_kind,
        )  # fmt: skip
        try:
            decoded = response.json()
        except ValueError:
            decoded = None
        return outcome, decoded if isinstance(decoded, dict) else {}

    async def _read(self, path: str, params: dict[str, str], auth: httpx.Auth) -> object:
        try:
            response = await self._http.get(self._base + path, params=params, auth=auth)
        except httpx.HTTPError as exc:
            raise XApiError(classify(method="GET", exception=exc)) from exc
        if response.status_code != 200:
            raise XApiError(
                classify(
                    method="GET",
                    status=response.status_code,
                    headers=response.headers,
                    body=response.content,
                )
            )
        try:
            return response.json()
        except ValueError as exc:
            raise XApiError(Outcome(OutcomeKind.TRANSIENT_RETRY, "bad_json", 200)) from exc

    async def _pages(
        self, path: str, params: dict[str, str], auth: httpx.Auth, max_pages: int
    ) -> ReadBack:
        items: list[PostedItem] = []
        for _ in range(max_pages):
            try:
                page = await self._read(path, params, auth)
            except XApiError as exc:
                exc.items_read = len(items)
                raise
            items.extend(posted_items(page))
            meta = page.get("meta") if isinstance(page, dict) else None
            token = meta.get("next_token") if isinstance(meta, dict) else None
            if not isinstance(token, str):
                return ReadBack(items, complete=True)
            params = {**params, "pagination_token": token}
        return ReadBack(items, complete=False)

    async def recent_tweets(
        self, user_id: str, *, auth: httpx.Auth, since: float | None = None, max_pages: int = 5
    ) -> ReadBack:
        """The account's tweets newest first, since `since` (epoch s), up to `max_pages` pages."""
        # Threads are read back by their reply chain: what each post answers, in which thread.
        fields = "author_id,created_at,entities,conversation_id,referenced_tweets"
        params = {"max_results": "100", "tweet.fields": fields}
        if since is not None:
            params["start_time"] = _iso(since)
        return await self._pages(f"/2/users/{user_id}/tweets", params, auth, max_pages)

    async def recent_dms(
        self, participant_id: str, *, auth: httpx.Auth, max_pages: int = 5
    ) -> ReadBack:
        """Recent events of the one-to-one DM conversation with `participant_id`, newest first."""
        params = {"max_results": "100", "dm_event.fields": "created_at,sender_id,text"}
        path = f"/2/dm_conversations/with/{participant_id}/dm_events"
        return await self._pages(path, params, auth, max_pages)

    async def refresh_oauth2(
        self, *, client_id: str, client_secret: str | None, refresh_token: str
    ) -> OAuth2Tokens:
        """Spend `refresh_token` for a new pair; raises TokenRefreshRejected on 400/401."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        basic = httpx.BasicAuth(client_id, client_secret) if client_secret else None
        if basic is None:
            form["client_id"] = client_id  # public clients identify themselves in the body
        url = self._base + "/2/oauth2/token"
        try:
            response = await self._http.post(url, data=form, auth=basic or httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as exc:
            raise XApiError(classify(method="GET", exception=exc)) from exc
        if response.status_code in (400, 401):
            raise TokenRefreshRejected(_token_error(response))
        if response.status_code != 200:
            outcome = classify(method="GET", status=response.status_code, body=response.content)
            raise XApiError(outcome)
        token = response.json()
        return OAuth2Tokens(
            access_token=str(token["access_token"]),
            refresh_token=str(token["refresh_token"]),
            expires_in_s=float(token.get("expires_in", 7200)),
        )

    async def ping(self) -> bool:
        """True when X's OpenAPI document (no auth needed) answers 200."""
        try:
            response = await self._http.get(self._base + "/2/openapi.json")
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _retryable(exc: Exception) -> bool:
    return isinstance(exc, XApiError) and exc.outcome.kind is OutcomeKind.TRANSIENT_RETRY


class WriterClient:
    """The seed's synchronous client: ping, tweet, dm, delete, returning X's JSON.

    Posts are never retried (X has no idempotency key); deletes retry transient failures.
    Anything but success raises `XApiError`, except a DELETE of a tweet that is already gone,
    which returns X's 404 body (deleting is idempotent).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        auth: httpx.Auth | None = None,
        auth_kind: AuthKind = "oauth2",
        timeout_s: float = 20.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._auth_kind = auth_kind
        self._http = httpx.Client(auth=auth, timeout=timeout_s, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    def ping(self) -> bool:
        """GET /2/openapi.json: True when X answers 200."""
        try:
            return self._http.get(self._base + "/2/openapi.json").status_code == 200
        except httpx.HTTPError:
            return False

    def _send(self, call: XCall) -> dict[str, Any]:
        try:
            response = self._http.request(call.method, self._base + call.path, json=call.body)
        except httpx.HTTPError as exc:
            raise XApiError(classify(method=call.method, exception=exc)) from exc
        outcome = classify(
            method=call.method,
            status=response.status_code,
            headers=response.headers,
            body=response.content,
            auth=self._auth_kind,
        )
        if outcome.kind in (OutcomeKind.SUCCESS, OutcomeKind.ALREADY_GONE):
            body = response.json() if response.content else {}
            return body if isinstance(body, dict) else {"data": body}
        raise XApiError(outcome)

    def tweet(self, text: str, **params: Any) -> dict[str, Any]:
        """Post a tweet; `params` are X's body fields (reply, quote_tweet_id, media, poll)."""
        return self._send(tweet_call(text, **params))

    def dm(self, recipient_id: str, text: str, **params: Any) -> dict[str, Any]:
        """Send a one-to-one DM to `recipient_id`."""
        return self._send(dm_call(recipient_id, text, **params))

    def delete(self, tweet_id: str) -> dict[str, Any]:
        """Delete a tweet, retrying transient failures (DELETE is idempotent)."""
        for attempt in _delete_attempts():
            with attempt:
                return self._send(delete_call(tweet_id))
        raise AssertionError("stamina.retry_context ends by returning or raising")


def _delete_attempts() -> Iterator[stamina.Attempt]:
    return iter(stamina.retry_context(on=_retryable, attempts=3, timeout=30.0, wait_max=5.0))


def _token_error(response: httpx.Response) -> str:
    """X's own words for a refused refresh (`error: error_description`), never the token."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        suffix = f": {description}" if isinstance(description, str) else ""
        return f"token endpoint answered {response.status_code}, {body['error']}{suffix}"
    return f"token endpoint answered {response.status_code}"
