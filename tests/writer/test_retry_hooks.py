"""stamina retries are counted in the writer's own registry, not the global one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina
from prometheus_client import REGISTRY
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

from twitstack.core.metrics import new_registry
from twitstack.writer.retry_hooks import writer_retry_hook


@pytest.fixture
def restore_hooks() -> Iterator[None]:
    saved = get_on_retry_hooks()
    yield
    set_on_retry_hooks(saved)


@pytest.mark.usefixtures("restore_hooks")
def test_retries_are_counted_in_the_service_registry() -> None:
    """Two retries of a flaky idempotent call show up as writer_retries_total == 2."""
    registry = new_registry()
    set_on_retry_hooks([writer_retry_hook(registry)])
    stamina.set_testing(True, attempts=3)
    calls = []

    @stamina.retry(on=ConnectionError, attempts=3)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    assert flaky() == "ok"
    name = f"{__name__}.{flaky.__qualname__}"
    assert registry.get_sample_value("writer_retries_total", {"callable": name}) == 2
    assert REGISTRY.get_sample_value("writer_retries_total", {"callable": name}) is None
