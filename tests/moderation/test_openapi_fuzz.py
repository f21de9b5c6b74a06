"""schemathesis against /openapi.json: no 5xx, and every response matches the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.moderation.harness import Harness
from tests.moderation.live import LiveApp, serve_live
from twitstack.moderation.roles import Role


async def _setup(harness: Harness) -> dict[str, Any]:
    await harness.add_user("fuzz", Role.ADMIN)
    await harness.pending(author="someone", text="fuzz target")
    return {"token": await harness.bearer("fuzz")}


@pytest.fixture
def live_api(redis_url: str, tmp_path: Path) -> Iterator[LiveApp]:
    with serve_live(redis_url, tmp_path, _setup) as live:
        yield live


@pytest.fixture
def api_schema(live_api: LiveApp) -> Any:
    return schemathesis.openapi.from_url(f"{live_api.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_openapi_document(case: Any, live_api: LiveApp) -> None:
    """No 5xx; status codes, content types and bodies are the documented ones."""
    case.call_and_validate(
        headers={"authorization": f"Bearer {live_api.info['token']}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=10,
    )
