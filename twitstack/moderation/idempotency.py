"""Idempotency-Key support for POSTs: a retried request gets the first response, not a redo."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack.moderation.db import Database, IntegrityError

HEADER = "idempotency-key"
MAX_KEY_CHARS = 200


async def run_idempotent(
    request: Request,
    db: Database,
    principal: str,
    body: bytes,
    handler: Callable[[], Awaitable[JSONResponse]],
    *,
    now: float,
    ttl_s: float,
) -> Response:
    """Run `handler` once per (principal, key); replays its stored response afterwards.

    Only responses below 500 are stored: a server error may be retried for real. The same key
    with a different body or path is refused with 422, as Stripe does.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return await handler()
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        return JSONResponse(
            {"detail": f"Idempotency-Key: expected 1-{MAX_KEY_CHARS} characters"}, 422
        )
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    await db.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - ttl_s,))
    stored = await db.fetchone(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE principal = ? AND key = ?",
        (principal, key),
    )
    if stored is not None:
        return _replay(stored["fingerprint"], fingerprint, stored["status"], stored["body"])
    response = await handler()
    if response.status_code < 500:
        # A concurrent retry may store first; both ran the same idempotent ledger operation.
        with contextlib.suppress(IntegrityError):
            await db.execute(
                "INSERT INTO idempotency_keys (principal, key, fingerprint, status, body,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (principal, key, fingerprint, response.status_code, bytes(response.body), now),
            )
    response.headers["idempotency-key"] = key
    return response


def _replay(expected: str, fingerprint: str, status: int, body: bytes | str) -> Response:
    if expected != fingerprint:
        return JSONResponse(
            {"detail": "Idempotency-Key was already used with a different request"}, 422
        )
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    return Response(
        raw,
        status_code=int(status),
        media_type="application/json",
        headers={"idempotent-replayed": "true"},
    )
