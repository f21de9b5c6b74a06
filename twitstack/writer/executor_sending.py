"""The executor's calls to X: one counted call, its rate-limit headers, a token refresh,
transient retries, and when to try again."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import stamina

from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.reachability import count_reachability, error_class
from twitstack.writer.retry_hooks import operation_for
from twitstack.writer.send_steps import Observation
from twitstack.writer.spend_ledger import Charge, SpendLedger
from twitstack.writer.tokens import AccountAuth, CredentialsError, TokenManager
from twitstack.writer.x_calls import XCall, XReply
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.spend import action_for

# X's longest rate-limit window is 24 hours.
_MAX_RESET_WAIT_S = 24 * 3600.0


def _counts_against_account(outcome: Outcome) -> bool:
    """False for answers X gives before it knows the user (a 401, a configuration 403).

    Their rate-limit headers describe another bucket (a 401's are the anonymous bucket's):
    adopting them would show a fresh budget while the account's window is exhausted.
    """
    if outcome.status == 401:
        return False
    return not (outcome.status == 403 and outcome.kind is OutcomeKind.CONFIG_FATAL)


class _TransientError(Exception):
    """Carries a retryable outcome through stamina's retry loop."""

    def __init__(self, reply: XReply, action: str) -> None:
        self.reply = reply
        self.error_class = error_class(reply.outcome)  # what writer.retry_scheduled names
        self.operation = operation_for(action)  # writer_retries_total's label


class ExecutorSending:
    """A base of RequestExecutor: one request's call to X, counted, retried when it may be,
    its headers recorded or its reservation given back; when to try again, what it costs."""

    _client: XApiClient
    _tokens: TokenManager
    _budgets: RateLimitBudgets
    _settings: WriterSettings
    _metrics: WriterMetrics
    _clock: Callable[[], float]
    _spend: SpendLedger
    _rng: random.Random

    def _at(self, epoch_s: float) -> datetime:
        # X's reset times are on the writer's clock; the ledger schedules in UTC datetimes.
        return datetime.fromtimestamp(epoch_s, UTC)

    def _after_reset(self, reset: float | None) -> datetime:
        now = self._clock()
        base = reset if reset is not None else now + 60.0  # X's own fallback
        if not math.isfinite(base) or base > now + _MAX_RESET_WAIT_S:
            # No window of X's resets that late (a header in milliseconds, junk in the budget
            # hash), and past year 9999 no datetime holds it: look again after the longest one.
            base = now + _MAX_RESET_WAIT_S
        jitter = self._rng.uniform(0, self._settings.rate_limit_jitter_s)
        return self._at(base + self._settings.rate_limit_margin_s + jitter)

    def _charge_for(self, request: WriteRequest, call: XCall | None = None) -> Charge:
        # A thread is charged part by part: this call's part (the thread steps charge the rest).
        if call is not None and request.action == WriteAction.THREAD:
            return self._spend.charge(request.account, action_for("tweet", call.body or {}))
        return self._spend.charge(request.account, action_for(str(request.action), request.payload))

    async def _once(
        self, request: WriteRequest, call: XCall, auth: AccountAuth, *, reserved: bool
    ) -> XReply:
        """One call to X, counted; its headers are left for the caller to record.

        Headers of an answer that did not count against the account's window are dropped, so
        the caller gives the reservation back instead of recording them.
        """
        reply = await self._client.execute(call, auth=auth.auth, auth_kind=auth.kind)
        if not _counts_against_account(reply.outcome):
            reply = XReply(reply.outcome, {}, reply.elapsed_s)
        action = str(request.action)
        metrics = self._metrics
        metrics.child(metrics.request_latency, action).observe(reply.elapsed_s)
        outcome = reply.outcome
        metrics.child(metrics.outcomes, action, str(outcome.kind), outcome.reason).inc()
        count_reachability(self._metrics, outcome, now=self._clock())
        return reply

    async def _observe(
        self, request: WriteRequest, call: XCall, headers: Mapping[str, str], *, reserved: bool
    ) -> None:
        """Record X's rate-limit headers now (or give back the reservation when none came)."""
        remaining: dict[str, int] = {}
        if headers:
            remaining = await self._budgets.observe(
                request.account, call.endpoint, headers, reserved=reserved
            )
        elif reserved:
            await self._budgets.release(request.account, call.endpoint)
        if "window" in remaining:
            gauge = self._metrics.rate_limit_remaining
            self._metrics.child(gauge, request.account, call.endpoint).set(remaining["window"])

    async def _send(
        self, request: WriteRequest, call: XCall, auth: AccountAuth
    ) -> tuple[XReply, Observation | None]:
        """X's final answer, and its reserved headers when they still have to be recorded."""
        reply = await self._once(request, call, auth, reserved=True)
        kind = reply.outcome.kind
        if kind is not OutcomeKind.AUTH_REFRESH and kind is not OutcomeKind.TRANSIENT_RETRY:
            # The usual case: recorded together with the settle, in one round trip.
            return reply, Observation(request.account, call.endpoint, reply.headers)
        await self._observe(request, call, reply.headers, reserved=True)
        if reply.outcome.kind is OutcomeKind.AUTH_REFRESH:
            # X refused the token, so nothing was created: refresh once and try once more.
            try:
                fresh = await self._tokens.refresh(request.account, auth.access_token)
            except CredentialsError:
                return reply, None
            reply = await self._once(request, call, fresh, reserved=False)
            await self._spend.record(request.account, self._charge_for(request).action)
            await self._observe(request, call, reply.headers, reserved=False)
            if reply.outcome.kind is OutcomeKind.AUTH_REFRESH:
                detail = reply.outcome.detail or "Unauthorized"
                await self._tokens.reconnect_needed(
                    request.account, f"X answered 401 to a freshly refreshed token: {detail}"
                )
                return XReply(
                    Outcome(OutcomeKind.AUTH_FATAL, "unauthorized_after_refresh", 401),
                    reply.headers,
                    reply.elapsed_s,
                ), None
        if reply.outcome.kind is not OutcomeKind.TRANSIENT_RETRY:
            return reply, None
        return await self._retry_transient(request, call, auth, reply), None

    async def _retry_transient(
        self, request: WriteRequest, call: XCall, auth: AccountAuth, first: XReply
    ) -> XReply:
        # Only definitely-unsent or idempotent calls are TRANSIENT_RETRY (see outcome.py), so
        # sending again cannot duplicate anything. Total time is bounded by stamina's timeout.
        last = first
        if self._settings.transient_attempts <= 1:
            return last
        try:
            async for attempt in stamina.retry_context(
                on=_TransientError,
                attempts=self._settings.transient_attempts - 1,
                timeout=self._settings.transient_retry_s * 4,
                wait_max=self._settings.transient_retry_s,
            ):
                with attempt:
                    last = await self._once(request, call, auth, reserved=False)
                    await self._spend.record(request.account, self._charge_for(request).action)
                    await self._observe(request, call, last.headers, reserved=False)
                    if last.outcome.kind is OutcomeKind.TRANSIENT_RETRY:
                        raise _TransientError(last, str(request.action))
        except _TransientError as exc:
            return exc.reply
        return last
