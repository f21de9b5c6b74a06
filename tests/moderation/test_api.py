"""The JSON API: create with the queue format's validation, idempotency, lists and filters."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def _auth(mod: Harness, role: Role = Role.AUTHOR, name: str = "bot") -> dict[str, str]:
    await mod.add_user(name, role)
    return {"authorization": f"Bearer {await mod.bearer(name)}"}


async def test_create_validates_like_the_queue_format(mod: Harness) -> None:
    auth = await _auth(mod)
    async with mod.client() as client:
        too_long = await client.post(
            "/api/requests", json={"action": "tweet", "payload": {"text": "x" * 400}}, headers=auth
        )
        unknown = await client.post(
            "/api/requests", json={"action": "like", "payload": {}}, headers=auth
        )
        not_json = await client.post("/api/requests", content=b"{nope", headers=auth)
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "payload.text"
    assert unknown.status_code == 422
    assert "expected one of tweet, dm, delete" in unknown.json()["detail"]
    assert not_json.status_code == 422


async def test_create_records_pending_with_the_caller_as_author(mod: Harness) -> None:
    auth = await _auth(mod)
    async with mod.client() as client:
        created = await client.post(
            "/api/requests",
            json={"action": "tweet", "payload": {"text": "hello"}, "author": "someone-else"},
            headers=auth,
        )
        listed = await client.get("/api/requests", headers=auth)
    assert created.status_code == 201
    body = created.json()
    assert (body["state"], body["revision"], body["created"]) == ("pending", 1, True)
    [item] = listed.json()["items"]
    assert (item["id"], item["author"], item["text"]) == (body["id"], "bot", "hello")


async def test_idempotency_key_makes_retries_safe(mod: Harness) -> None:
    auth = await _auth(mod)
    message = {"action": "tweet", "payload": {"text": "once only"}}
    headers = {**auth, "idempotency-key": "k-1"}
    async with mod.client() as client:
        first = await client.post("/api/requests", json=message, headers=headers)
        retry = await client.post("/api/requests", json=message, headers=headers)
        other = await client.post(
            "/api/requests", json={**message, "payload": {"text": "other"}}, headers=headers
        )
        listed = await client.get("/api/requests", headers=auth)
    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422
    assert listed.json()["total"] == 1


async def test_list_filters_sorts_and_paginates(mod: Harness) -> None:
    auth = await _auth(mod, Role.VIEWER, "viewer")
    for i in range(7):
        mod.clock.advance(1)
        await mod.pending(author="a" if i % 2 else "b", text=f"n{i}")
    async with mod.client() as client:
        page2 = await client.get("/api/requests?size=3&page=2&sort=oldest", headers=auth)
        by_author = await client.get("/api/requests?author=a", headers=auth)
        bad = await client.get("/api/requests?state=bogus", headers=auth)
        big = await client.get("/api/requests?size=100000", headers=auth)
    body = page2.json()
    assert (body["total"], body["pages"], body["page"]) == (7, 3, 2)
    assert [i["text"] for i in body["items"]] == ["n3", "n4", "n5"]
    assert {i["author"] for i in by_author.json()["items"]} == {"a"}
    assert by_author.json()["total"] == 3
    assert (bad.status_code, big.status_code) == (422, 422)


async def test_get_unknown_request_is_404(mod: Harness) -> None:
    auth = await _auth(mod, Role.VIEWER, "viewer")
    async with mod.client() as client:
        response = await client.get("/api/requests/nope", headers=auth)
    assert response.status_code == 404
    assert response.json() == {"detail": "request nope not found"}


async def test_metrics_count_requests_by_route_template(mod: Harness) -> None:
    auth = await _auth(mod, Role.VIEWER, "viewer")
    request_id = await mod.pending()
    async with mod.client() as client:
        await client.get(f"/api/requests/{request_id}", headers=auth)
        text = (await client.get("/metrics")).text
    assert (
        'moderation_http_requests_total{method="GET",'
        'route="/api/requests/{request_id}",status="200"} 1.0' in text
    )
    assert "moderation_pending_requests 1.0" in text
    assert request_id not in text
