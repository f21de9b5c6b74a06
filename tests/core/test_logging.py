"""Logging: JSON lines in prod, stdlib records in the same pipeline, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime

import pytest

from twitstack.core.logging import bind_service, configure_logging, get_logger, register_secret

SENTINEL = "sentinel-Secret-9f2c"


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def prod_stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("prod", "debug", secrets=[SENTINEL], stream=stream)
    return stream


def test_each_line_is_one_json_object_with_required_keys(prod_stream: io.StringIO) -> None:
    """Every record is a JSON object with timestamp, level, event, service and its fields."""
    get_logger().info("writer.request_executed", request_id="r1", attempt=2)
    (record,) = json_lines(prod_stream)
    assert record["event"] == "writer.request_executed"
    assert record["level"] == "info"
    assert record["service"] == "daemon"
    assert (record["request_id"], record["attempt"]) == ("r1", 2)
    timestamp = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
    offset = timestamp.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_service_comes_from_the_task_context(prod_stream: io.StringIO) -> None:
    """bind_service tags the lines of the current context."""
    import structlog

    bind_service("writer")
    try:
        get_logger().info("writer.started")
    finally:
        structlog.contextvars.clear_contextvars()
    assert json_lines(prod_stream)[0]["service"] == "writer"


def test_stdlib_records_go_through_the_same_pipeline(prod_stream: io.StringIO) -> None:
    """A uvicorn/httpx-style stdlib record comes out as the same JSON shape."""
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 42)
    (record,) = json_lines(prod_stream)
    assert record["event"] == "Started server process [42]"
    assert record["level"] == "warning"
    assert record["logger"] == "uvicorn.error"
    assert "timestamp" in record


def test_tracebacks_are_structured_without_locals(prod_stream: io.StringIO) -> None:
    """An exception is a structured field, and frame locals (where secrets hide) are left out."""
    token = "local-variable-value"
    try:
        raise ValueError(f"boom {len(token)}")
    except ValueError:
        get_logger().exception("writer.crashed")
    (record,) = json_lines(prod_stream)
    exception = record["exception"]
    assert isinstance(exception, list)
    assert exception[0]["exc_type"] == "ValueError"
    assert "local-variable-value" not in prod_stream.getvalue()


def test_secret_never_appears_in_output(prod_stream: io.StringIO) -> None:
    """A configured secret is redacted in fields, messages, stdlib records and tracebacks."""
    log = get_logger()
    log.info("auth.token_loaded", token=SENTINEL, nested={"list": [f"Bearer {SENTINEL}"]})
    log.info(f"event text with {SENTINEL}")
    logging.getLogger("httpx").error("request with %s", SENTINEL)
    try:
        raise RuntimeError(f"refresh failed for {SENTINEL}")
    except RuntimeError:
        log.exception("auth.refresh_failed")
    output = prod_stream.getvalue()
    assert SENTINEL not in output
    assert output.count("[REDACTED]") >= 5


def test_secrets_registered_later_are_redacted(prod_stream: io.StringIO) -> None:
    """A secret fetched at run time (e.g. from Secrets Manager) is redacted from then on."""
    register_secret("late-secret-value-123")
    get_logger().info("x.y", value="late-secret-value-123")
    assert "late-secret-value-123" not in prod_stream.getvalue()


def test_dev_output_is_readable_text() -> None:
    """env=dev renders human-readable lines, not JSON, still redacted."""
    stream = io.StringIO()
    configure_logging("dev", "info", secrets=[SENTINEL], stream=stream)
    get_logger().info("scraper.run_finished", job="search-1", token=SENTINEL)
    line = stream.getvalue()
    assert "scraper.run_finished" in line
    assert "job=search-1" in line
    assert SENTINEL not in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_dev_exceptions_off_a_terminal_are_plain_tracebacks() -> None:
    """Rich's boxed traceback is for a developer's terminal; a pipe or file gets plain text."""
    stream = io.StringIO()  # not a tty
    configure_logging("dev", "info", secrets=[SENTINEL], stream=stream)
    try:
        raise ValueError(f"bad {SENTINEL}")
    except ValueError:
        get_logger().exception("job.failed")
    text = stream.getvalue()
    assert "Traceback (most recent call last):" in text
    assert "ValueError: bad [REDACTED]" in text
    assert "╭" not in text  # no Rich box


def test_dev_exceptions_on_a_terminal_are_rich_tracebacks() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    configure_logging("dev", "info", secrets=[SENTINEL], stream=stream)
    try:
        raise ValueError(f"bad {SENTINEL}")
    except ValueError:
        get_logger().exception("job.failed")
    text = stream.getvalue()
    assert "╭" in text  # Rich's box, imported for this first exception
    assert "ValueError" in text
    assert SENTINEL not in text
