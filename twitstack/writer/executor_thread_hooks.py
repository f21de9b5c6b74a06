"""What the thread steps borrow from the executor (thread_steps.PartSender)."""

from __future__ import annotations

from datetime import datetime

from twitstack.writer.executor_settling import ExecutorSettling
from twitstack.writer.send_steps import Observation
from twitstack.writer.tokens import AccountAuth
from twitstack.writer.x_calls import XCall, XReply
from twitstack.writes.models import WriteRequest


class ExecutorThreadHooks(ExecutorSettling):
    """One thread part is one call to X, sent and settled like any post."""

    async def send_part(
        self, request: WriteRequest, call: XCall, auth: AccountAuth
    ) -> tuple[XReply, Observation | None]:
        """One part's call to X, with the token refresh and transient retries of any post."""
        return await self._send(request, call, auth)

    async def settle_part(
        self, request: WriteRequest, call: XCall, reply: XReply, observation: Observation | None,
        window: tuple[float, float],
    ) -> None:  # fmt: skip
        """Settle a part's answer that is neither a success nor a refusal, as a post's."""
        await self._settle(request, call, reply, observation, None, window)

    async def observe_part(
        self, request: WriteRequest, call: XCall, observation: Observation | None
    ) -> None:
        """Record a part's rate-limit headers (its reservation is spent either way)."""
        if observation is not None:
            await self._observe(request, call, observation.headers, reserved=True)

    def retry_at(self, reset: float | None) -> datetime:
        """When to try again after a rate-limit reset (margin and jitter added)."""
        return self._after_reset(reset)
