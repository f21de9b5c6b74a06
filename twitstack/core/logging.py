"""structlog, configured once: readable lines in dev, one JSON object per line in prod.

In dev, exceptions are rendered by Rich on an interactive terminal and as plain tracebacks
otherwise; Rich is imported only then, so a daemon never holds it (`twitstack._lean_imports`).

Records from the standard library (uvicorn, httpx, botocore) go through the same processors,
and every value registered with `register_secret` is redacted wherever it would appear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words
# Values `SecretRedactor._redact` returns unchanged whatever the secrets are.
_PLAIN_SCALARS = frozenset({int, float, bool, bytes, bytearray, type(None)})
# Chatty third-party loggers kept at WARNING: httpx logs every request at INFO.
_QUIET_LOGGERS = ("httpx", "httpcore", "botocore", "aiobotocore", "boto3", "asyncio", "hpack")

logger: structlog.stdlib.BoundLogger = structlog.get_logger("twitstack")


class SecretRedactor:
    """Replaces every registered secret value in an event dict, recursively."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        # Longest first, so a secret containing another is replaced whole; sorted once per
        # registration, not once per logged value (every log line redacts all its values).
        self._longest_first: tuple[str, ...] = ()

    def register(self, *values: str | None) -> None:
        fresh = {value for value in values if value and len(value) >= _MIN_SECRET_LENGTH}
        if fresh - self._secrets:
            with self._lock:
                secrets = self._secrets | fresh
                self._longest_first = tuple(sorted(secrets, key=len, reverse=True))
                self._secrets = secrets

    def redact_text(self, text: str) -> str:
        for secret in self._longest_first:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {key: self._redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(item) for item in value]
        if isinstance(value, bytes | bytearray | int | float | bool) or value is None:
            return value
        return self.redact_text(str(value)) if self._secrets else value

    def _nothing_to_redact(self, event_dict: EventDict) -> bool:
        """True when every value is a plain scalar and no secret occurs in any string value.

        One search per secret over all the strings at once, instead of one per value: the
        usual line (ids, names, numbers) then goes through as it is, exactly as `_redact`
        would have left it.
        """
        texts = []
        for value in event_dict.values():
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif kind not in _PLAIN_SCALARS:
                return False
        joined = "\0".join(texts)
        return not any(secret in joined for secret in self._longest_first)

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if not self._secrets or self._nothing_to_redact(event_dict):
            return event_dict
        return {key: self._redact(value) for key, value in event_dict.items()}


_redactor = SecretRedactor()


def register_secret(*values: str | None) -> None:
    """Never log these values (tokens, passwords, keys) from now on."""
    _redactor.register(*values)


def redact(text: str) -> str:
    """`text` with every registered secret replaced; for error pages and CLI output."""
    return _redactor.redact_text(text)


def _redacting(renderer: Processor) -> Processor:
    """Wrap a renderer so secrets hidden in its output (e.g. a rendered traceback) are removed."""

    def render(logger: WrappedLogger, name: str, event_dict: EventDict) -> Any:
        rendered = renderer(logger, name, event_dict)
        return _redactor.redact_text(rendered) if isinstance(rendered, str) else rendered

    return render


def _rich_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """Rich's traceback with its locals, as structlog's default formatter would render it.

    structlog picks that formatter when it is imported; twitstack imports it with Rich hidden,
    so a developer's terminal gets Rich here, imported on the first exception logged.
    """
    from rich.console import Console
    from rich.traceback import Traceback

    sio.write("\n")
    Console(file=sio, color_system="truecolor").print(
        Traceback.from_exception(*exc_info, show_locals=True, word_wrap=True)
    )


def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", "daemon")
    return event_dict


def _rename_logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Keep the stdlib logger name as a field, without colliding with our `logger` attribute.
    name = event_dict.pop("logger", None)
    if name is not None and name != "twitstack":
        event_dict["logger"] = name
    return event_dict


class _LineLogger:
    """Writes structlog's rendered lines straight to the log stream (prod's hot path).

    The standard library's record, handler and formatter would only carry the line there and
    run the same processors a second time; the stdlib logger of the same name still decides
    the level, and stdlib records (uvicorn, httpx) still go through the root handler.
    """

    def __init__(self, name: str, stream: TextIO, lock: threading.Lock) -> None:
        self.name = name
        self._stdlib = logging.getLogger(name)
        self._stream = stream
        self._lock = lock

    def _write(self, level: int, line: str) -> None:
        if not self._stdlib.isEnabledFor(level):
            return
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # a closed or broken stream must not stop the work
                pass

    def debug(self, line: str) -> None:
        self._write(logging.DEBUG, line)

    def info(self, line: str) -> None:
        self._write(logging.INFO, line)

    def warning(self, line: str) -> None:
        self._write(logging.WARNING, line)

    warn = warning

    def error(self, line: str) -> None:
        self._write(logging.ERROR, line)

    exception = error

    def critical(self, line: str) -> None:
        self._write(logging.CRITICAL, line)

    fatal = critical

    def __getattr__(self, name: str) -> Any:
        # Whatever else a caller asks of a stdlib logger (level, handlers, isEnabledFor, ...).
        return getattr(self._stdlib, name)


class _LineLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        # structlog asks for a logger on every call (loggers are not cached, so that a later
        # configure_logging takes effect everywhere): one per name is enough.
        self._loggers: dict[str, _LineLogger] = {}

    def __call__(self, *args: Any) -> _LineLogger:
        name = args[0] if args and isinstance(args[0], str) else "twitstack"
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = _LineLogger(name, self._stream, self._lock)
        return logger


# structlog's add_log_level: warn is the stdlib's alias, exception() logs at error.
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}
_positional_args = structlog.stdlib.PositionalArgumentsFormatter()
_timestamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")


def _line_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """`_shared_processors` after merge_contextvars, in one call: prod's hot path.

    The same fields in the same order as add_log_level, add_logger_name, _rename_logger_name,
    PositionalArgumentsFormatter, TimeStamper and _add_service, one after the other.
    """
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
    record = event_dict.get("_record")
    name = logger.name if record is None else record.name
    event_dict.pop("logger", None)
    if name != "twitstack":
        event_dict["logger"] = name
    if "positional_args" in event_dict:
        event_dict = _positional_args(logger, method_name, event_dict)
    event_dict = _timestamp(logger, method_name, event_dict)
    event_dict.setdefault("service", "daemon")
    return event_dict


class _JSONDumps:
    """`json.dumps(obj, **kw)` with the encoder built once rather than for every line."""

    def __init__(self) -> None:
        self._encoder: json.JSONEncoder | None = None

    def __call__(self, obj: Any, **kw: Any) -> str:
        if self._encoder is None:
            self._encoder = json.JSONEncoder(**kw)
        return self._encoder.encode(obj)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _rename_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
    ]


def configure_logging(
    env: Literal["dev", "prod"],
    level: str = "info",
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's root logger; call once, at the edge."""
    register_secret(*secrets)
    renderer: Processor
    if env == "prod":
        renderer = structlog.processors.JSONRenderer(serializer=_JSONDumps())
        # Locals are left out: they are where tokens and passwords would hide.
        exception_processors: list[Processor] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    else:
        interactive = (stream or sys.stdout).isatty()
        renderer = structlog.dev.ConsoleRenderer(
            colors=interactive,
            exception_formatter=_rich_traceback if interactive else structlog.dev.plain_traceback,
        )
        exception_processors = []

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exception_processors,
            _redactor,
            _redacting(renderer),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's loggers propagate to the root handler; its access log is off by config, and
    # its lifecycle chatter at INFO repeats our own `<service>.started/stopped` events.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").setLevel(max(root.level, logging.WARNING))

    if env == "prod":
        # One JSON line per event, rendered once and written straight to the stream.
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                _line_fields,
                structlog.processors.StackInfoRenderer(),
                *exception_processors,
                _redactor,
                _redacting(renderer),
            ],
            logger_factory=_LineLoggerFactory(handler.stream),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
        return
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "twitstack", **initial: Any) -> structlog.stdlib.BoundLogger:
    """A logger for `name` with `initial` fields bound."""
    log: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return log.bind(**initial) if initial else log


def bind_service(name: str) -> None:
    """Tag every log line of the current task (and the tasks it starts) with `service=name`."""
    structlog.contextvars.bind_contextvars(service=name)


def log_context(**fields: Any) -> contextlib.AbstractContextManager[Any]:
    """Within the block, every log line of this task carries `fields` (e.g. a request's id).

    Lines logged deep inside libraries' callbacks (stamina's retry hook) get them too.
    """
    return structlog.contextvars.bound_contextvars(**fields)
