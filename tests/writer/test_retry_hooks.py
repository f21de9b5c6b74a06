"""stamina retries are counted in the writer's own registry, by the X operation retried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina
from prometheus_client import REGISTRY
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

from twitstack.core.metrics import new_registry
from twitstack.writer.retry_hooks import OPERATIONS, operation_for, writer_retry_hook


class _Blip(ConnectionError):
    """A retryable failure of one X operation, as the writer's executor raises it."""

    def __init__(self, operation: str) -> None:
        super().__init__("blip")
        self.operation = operation


@pytest.fixture
def restore_hooks() -> Iterator[None]:
    saved = get_on_retry_hooks()
    yield
    set_on_retry_hooks(saved)
    stamina.set_testing(False)


def _flaky(failures: int, error: Exception) -> int:
    """Runs a retry_context (as the executor does) that fails `failures` times; returns tries."""
    tries = 0
    for attempt in stamina.retry_context(on=ConnectionError, attempts=failures + 1):
        with attempt:
            tries += 1
            if tries <= failures:
                raise error
    return tries


@pytest.mark.usefixtures("restore_hooks")
def test_retries_are_counted_by_operation_in_the_service_registry() -> None:
    """Two retries of post_tweet show up as writer_retries_total{operation="post_tweet"} 2."""
    registry = new_registry()
    set_on_retry_hooks([writer_retry_hook(registry)])
    stamina.set_testing(True, attempts=3)
    assert _flaky(2, _Blip(operation_for("tweet"))) == 3
    assert registry.get_sample_value("writer_retries_total", {"operation": "post_tweet"}) == 2
    assert registry.get_sample_value("writer_retries_total", {"operation": "send_dm"}) == 0
    assert REGISTRY.get_sample_value("writer_retries_total", {"operation": "post_tweet"}) is None
    # stamina names every retry_context "<context block>": that is no label value of ours.
    assert (
        registry.get_sample_value("writer_retries_total", {"callable": "<context block>"}) is None
    )


@pytest.mark.usefixtures("restore_hooks")
def test_every_operation_exists_at_zero_and_foreign_retries_are_not_the_writers() -> None:
    """Another service's retry in the same process (no operation) leaves the writer's at 0."""
    registry = new_registry()
    set_on_retry_hooks([writer_retry_hook(registry)])
    stamina.set_testing(True, attempts=2)
    assert _flaky(1, ConnectionError("archive upload blip")) == 2
    assert set(OPERATIONS.values()) == {"post_tweet", "send_dm", "delete_tweet"}
    for operation in OPERATIONS.values():
        assert registry.get_sample_value("writer_retries_total", {"operation": operation}) == 0
