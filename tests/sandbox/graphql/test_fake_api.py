"""The GraphQL fake's own contract: authentication, shapes, faults and the inspection API."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from twitstack.core.http_server import serve_asgi
from twitstack.sandbox.graphql import GraphQLFake, SynthCorpus, create_app

pytestmark = pytest.mark.anyio
_AUTH = {"authorization": "Bearer x", "x-csrf-token": "c1"}
_COOKIES = {"auth_token": "t1", "ct0": "c1"}


def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(seed=3))
    return httpx.AsyncClient(transport=transport, base_url="http://fake", cookies=_COOKIES)


def _search(query: str) -> dict[str, str]:
    return {"variables": json.dumps({"rawQuery": query, "count": 5})}


async def test_refuses_requests_without_a_matching_csrf_token() -> None:
    async with _client() as client:
        rep = await client.get("/i/api/graphql/q/SearchTimeline", params=_search("python"),
                               headers={"authorization": "Bearer x"})  # fmt: skip
    assert rep.status_code == 403
    assert rep.json()["errors"][0]["code"] == 353


async def test_scripted_fault_answers_once_then_data_resumes() -> None:
    async with _client() as client:
        injected = await client.post(
            "/_sandbox/faults", json={"kind": "rate_limit", "account": "t1"}
        )
        assert injected.status_code == 201
        limited = await client.get("/i/api/graphql/q/SearchTimeline", params=_search("python"),
                                   headers=_AUTH)  # fmt: skip
        ok = await client.get("/i/api/graphql/q/SearchTimeline", params=_search("python"),
                              headers=_AUTH)  # fmt: skip
        seen = (await client.get("/_sandbox/requests")).json()
    assert limited.status_code == 429
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert int(limited.headers["x-rate-limit-reset"]) > 0
    assert ok.status_code == 200
    assert "search_by_raw_query" in ok.json()["data"]
    assert [(r["op"], r["status"], r["account"]) for r in seen] == [
        ("SearchTimeline", 429, "t1"), ("SearchTimeline", 200, "t1"),
    ]  # fmt: skip


async def test_added_tweets_are_searchable_and_unknown_ops_are_not_404() -> None:
    async with _client() as client:
        added = await client.post("/_sandbox/tweets", json={"count": 2, "text": "zebra"})
        rep = await client.get("/i/api/graphql/q/SearchTimeline", params=_search("zebra"),
                               headers=_AUTH)  # fmt: skip
        unknown = await client.get("/i/api/graphql/q/NoSuchOp", params=_search(""), headers=_AUTH)
    ids = [e["entryId"] for e in rep.json()["data"]["search_by_raw_query"]["search_timeline"]
           ["timeline"]["instructions"][0]["entries"]]  # fmt: skip
    assert [f"tweet-{i}" for i in reversed(added.json()["ids"])] == ids[:2]
    assert unknown.status_code == 400  # a 404 would make twscrape refetch x.com


async def test_serves_absolute_form_requests_as_a_forward_proxy() -> None:
    """Through the fake as an HTTP proxy, a request gets the same answer, marked via_proxy."""
    fake = GraphQLFake(SynthCorpus.generate(seed=3))
    path = "/i/api/graphql/q/SearchTimeline"
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            port = await tg.start(
                lambda task_status: serve_asgi(
                    create_app(fake), host="127.0.0.1", port=0, name="graphql-fake",
                    task_status=task_status,
                )
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(cookies=_COOKIES, headers=_AUTH) as direct:
                plain = await direct.get(url + path, params=_search("python"))
            async with httpx.AsyncClient(cookies=_COOKIES, headers=_AUTH, proxy=url) as proxied:
                through = await proxied.get(url + path, params=_search("python"))
            tg.cancel_scope.cancel()
    assert plain.status_code == through.status_code == 200
    assert plain.json() == through.json()
    assert [(r.op, r.via_proxy) for r in fake.seen()] == [
        ("SearchTimeline", False), ("SearchTimeline", True),
    ]  # fmt: skip
