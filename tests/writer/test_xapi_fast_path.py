"""The bearer-token fast path of XApiClient.execute sends what httpx's own request() sends.

The fast path hands a built request to the transport httpx would pick; these tests record what
reaches the transport on both paths and compare them, and check the cases that must take the
general path (cookies held, another auth, an httpx without the transport lookup).
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.x_calls import delete_call, dm_call, tweet_call
from twitstack.writer.xapi_client import BearerAuth, XApiClient

pytestmark = pytest.mark.anyio
BASE = "https://api.x.test"
CREATED = {"data": {"id": "1", "text": "hé"}}


class Recorder:
    """A transport that keeps every request and answers like X's create endpoint."""

    def __init__(self, *, gzip_body: bool = False, cookie: bool = False) -> None:
        self.seen: list[httpx.Request] = []
        self.gzip_body, self.cookie = gzip_body, cookie

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        deleted = request.method == "DELETE"
        body = json.dumps({"data": {"deleted": True}} if deleted else CREATED).encode()
        headers = {"content-type": "application/json", "x-rate-limit-remaining": "9"}
        if self.gzip_body:
            body, headers["content-encoding"] = gzip.compress(body), "gzip"
        if self.cookie:
            headers["set-cookie"] = "guest_id=v1; Path=/; Domain=api.x.test"
        return httpx.Response(200 if deleted else 201, content=body, headers=headers)


def wire(request: httpx.Request) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    return request.method, str(request.url), list(request.headers.raw), request.content


@pytest.mark.parametrize(
    "call",
    [
        tweet_call("hé \U0001f600 <b>", reply={"in_reply_to_tweet_id": "5"}),
        dm_call("1001", "a DM"),
        delete_call("77"),
    ],
    ids=["tweet", "dm", "delete"],
)
async def test_fast_path_sends_the_bytes_request_would(call: object) -> None:
    fast, general = Recorder(), Recorder()
    auth = BearerAuth("token-1")
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(fast)) as fast_http,
        httpx.AsyncClient(transport=httpx.MockTransport(general)) as general_http,
    ):
        reply = await XApiClient(fast_http, base_url=BASE).execute(
            call,
            auth=auth,
            auth_kind="oauth2",  # type: ignore[arg-type]
        )
        # What httpx itself builds for the same call: the general path, forced by the auth.
        await general_http.request(
            call.method,  # type: ignore[attr-defined]
            BASE + call.path,  # type: ignore[attr-defined]
            json=call.body,  # type: ignore[attr-defined]
            auth=auth,
        )
    assert wire(fast.seen[0]) == wire(general.seen[0])
    assert reply.outcome.kind is OutcomeKind.SUCCESS
    assert reply.headers["x-rate-limit-remaining"] == "9"


async def test_a_gzip_reply_is_decoded_and_a_cookie_kept_then_the_general_path_sends_it() -> None:
    recorder = Recorder(gzip_body=True, cookie=True)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        client = XApiClient(http, base_url=BASE)
        first = await client.execute(tweet_call("one"), auth=BearerAuth("t"), auth_kind="oauth2")
        assert first.outcome.kind is OutcomeKind.SUCCESS
        assert first.outcome.result_id == "1"  # the gzip body was read decoded
        assert http.cookies.get("guest_id") == "v1"
        await client.execute(tweet_call("two"), auth=BearerAuth("t"), auth_kind="oauth2")
    assert recorder.seen[1].headers.get("cookie") == "guest_id=v1"


async def test_mounted_transports_are_honoured() -> None:
    """The transport httpx would choose for the URL (a mount, or an environment proxy)."""
    default, mounted = Recorder(), Recorder()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(default),
        mounts={"https://api.x.test": httpx.MockTransport(mounted)},
    ) as http:
        await XApiClient(http, base_url=BASE).execute(
            tweet_call("mounted"), auth=BearerAuth("t"), auth_kind="oauth2"
        )
    assert (len(default.seen), len(mounted.seen)) == (0, 1)


async def test_without_httpx_transport_lookup_every_call_takes_the_general_path() -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        client = XApiClient(http, base_url=BASE)
        client._transport_for_url = None  # as built over an httpx without the lookup
        reply = await client.execute(tweet_call("x"), auth=BearerAuth("t"), auth_kind="oauth2")
    assert reply.outcome.kind is OutcomeKind.SUCCESS
    assert recorder.seen[0].headers["authorization"] == "Bearer t"


def test_the_installed_httpx_offers_the_fast_path() -> None:
    """Fails on an httpx that dropped the lookup: the writer would still work, slower."""
    client = XApiClient(httpx.AsyncClient(), base_url=BASE)
    assert client._transport_for_url is not None
