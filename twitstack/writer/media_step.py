"""The executor's media step: upload a request's attachments, or say why it cannot go now.

It runs while the request is still `approved`, before any rate-limit reservation and before
`sending` is committed, so a crash or a failure here leaves nothing posted: the request is
retried later (network, 5xx, 429, slow processing) or held in `needs_review` for a person
(a file missing from the store, a file or alt text X refuses, failed video processing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from twitstack.core.logging import get_logger
from twitstack.writer.journal import WriterJournal
from twitstack.writer.media_upload import (
    MediaUploader,
    MediaUploadError,
    UploadFailure,
    with_media_ids,
)
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import Outcome
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writer.tokens import CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes.media import attachments_in
from twitstack.writes.models import ModerationStatus, WriteRequest

S = ModerationStatus
_log = get_logger("twitstack.writer.media_step")


class MediaStep:
    """Turns a payload with attachments into the payload X gets (attachments → media ids)."""

    def __init__(
        self,
        uploader: MediaUploader | None,
        client: XApiClient,
        tokens: TokenManager,
        journal: WriterJournal,
        metrics: WriterMetrics,
        *,
        later_at: Callable[[float | None], datetime],
        clock: Callable[[], float],
        spend: SpendLedger | None = None,
    ) -> None:
        self._uploader = uploader
        self._spend = spend
        self._client = client
        self._tokens = tokens
        self._journal = journal
        self._metrics = metrics
        self._later_at = later_at
        self._clock = clock
        # Request id → whether its media ids were all cached (not uploaded) for this attempt.
        self._from_cache: dict[str, bool] = {}

    async def payload_for(
        self,
        request: WriteRequest,
        credentials_failed: Callable[[WriteRequest, CredentialsError], Awaitable[None]],
    ) -> Mapping[str, Any] | None:
        """The payload to post, or None when the request was moved (later or to a human).

        Without attachments that is the request's own payload. The account's credentials are
        fetched first; when they fail, `credentials_failed` (the executor's pause) handles it.
        """
        attachments = attachments_in(request.payload)
        if not attachments:
            return request.payload
        try:
            auth = await self._tokens.auth_for(request.account)
        except CredentialsError as exc:
            await credentials_failed(request, exc)
            return None
        if self._uploader is None:
            missing = MediaUploadError(UploadFailure.MISSING, "this writer has no media store")
            await self._failed(request, missing)
            return None
        try:
            for attempt in range(2):
                try:
                    ids, uploaded = await self._uploader.media_ids(self._client, auth, attachments)
                except MediaUploadError as exc:
                    if exc.failure is not UploadFailure.REAUTH or attempt:
                        raise
                    auth = await self._tokens.refresh(request.account, auth.access_token)
                    continue
                self._metrics.media_uploads.labels(result="uploaded").inc(uploaded)
                if self._spend is not None:  # X bills uploads; cached ids cost nothing
                    await self._spend.record(request.account, "media_upload", uploaded)
                self._metrics.media_uploads.labels(result="cached").inc(len(ids) - uploaded)
                if len(self._from_cache) > 10_000:
                    self._from_cache.clear()  # entries of attempts that never reached X
                self._from_cache[request.id] = uploaded < len(ids)
                return with_media_ids(request.payload, ids)
        except CredentialsError as exc:
            failure = MediaUploadError(UploadFailure.TRANSIENT, f"credentials: {exc}")
            await self._failed(request, failure)
            return None
        except MediaUploadError as exc:
            await self._failed(request, exc)
            return None
        raise AssertionError("the loop returns or raises")  # pragma: no cover

    async def cached_ids_refused(self, request: WriteRequest, outcome: Outcome) -> bool:
        """After X's answer to a post: True when it refused (400) ids taken from the cache.

        X may have dropped an id before its stated expiry; a 400 is never a post, so the
        cached ids are forgotten and the request goes back to `approved`, to be sent again
        with fresh uploads. A 400 to freshly uploaded ids is X's final word (the caller
        fails the request), which bounds this to one extra attempt.
        """
        cached = self._from_cache.pop(request.id, False)
        if not cached or outcome.status != 400 or self._uploader is None:
            return False
        await self._uploader.forget(request.account, attachments_in(request.payload))
        self._metrics.media_uploads.labels(result="cached_refused").inc()
        _log.warning("writer.media_ids_refused", request_id=request.id, detail=outcome.detail)
        # Due now (as after a rate-limit reset that has passed): nothing waits on X.
        await self._journal.later(
            request, not_before=self._later_at(self._clock()), reason="media_ids_refused"
        )
        return True

    async def _failed(self, request: WriteRequest, exc: MediaUploadError) -> None:
        self._metrics.media_uploads.labels(result=exc.failure.value).inc()
        _log.warning(
            "writer.media_upload_failed", request_id=request.id, account=request.account,
            failure=exc.failure.value, detail=exc.detail,
        )  # fmt: skip
        if exc.for_human:
            await self._journal.move(
                request, S.NEEDS_REVIEW, from_states=[S.APPROVED], reason=exc.failure.value,
                detail=exc.detail,
            )  # fmt: skip
            return
        retry_at = exc.retry_at if exc.failure is UploadFailure.WAIT else None
        await self._journal.later(
            request, not_before=self._later_at(retry_at), reason=exc.failure.value,
            from_states=[S.APPROVED],
        )  # fmt: skip
