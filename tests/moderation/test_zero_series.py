"""A freshly started moderation service's /metrics shows its known label sets at 0."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness

pytestmark = pytest.mark.anyio


async def test_fresh_moderation_exports_decisions_and_login_failures_at_zero(
    mod: Harness,
) -> None:
    async with mod.client() as client:
        lines = (await client.get("/metrics")).text.splitlines()
    for decision in ("approve", "reject", "edit"):
        assert f'moderation_decisions_total{{decision="{decision}"}} 0.0' in lines
    for reason in ("bad_credentials", "throttled"):
        assert f'moderation_login_failures_total{{reason="{reason}"}} 0.0' in lines
