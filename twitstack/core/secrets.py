"""Secrets: environment → AWS Secrets Manager (cached, time-bounded) → default.

`get_secret` is synchronous, per the seed's convention; daemon code awaits `aget_secret`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from twitstack.core.dotenv import load_dotenv
from twitstack.core.errors import SecretError
from twitstack.core.logging import get_logger, register_secret

if TYPE_CHECKING:
    from twitstack.core.config import Settings

__all__ = ["SecretStore", "aget_secret", "configure_secrets", "get_secret", "load_dotenv"]

log = get_logger(__name__)

# Fetches one secret from the remote backend: None when it does not exist there.
RemoteFetch = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class SecretsManagerConfig:
    """Where and how to reach AWS Secrets Manager."""

    enabled: bool
    region: str
    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key: str | None
    prefix: str
    timeout_s: float
    cache_ttl_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretsManagerConfig:
        return cls(
            enabled=settings.aws_secrets_enabled,
            region=settings.aws_region,
            endpoint_url=settings.aws_secretsmanager_endpoint,
            access_key_id=_unwrap(settings.aws_access_key_id),
            secret_access_key=_unwrap(settings.aws_secret_access_key),
            prefix=settings.aws_secrets_prefix,
            timeout_s=settings.aws_timeout_s,
            cache_ttl_s=settings.aws_secrets_cache_ttl_s,
        )


def _unwrap(secret: object) -> str | None:
    getter = getattr(secret, "get_secret_value", None)
    return getter() if getter is not None else None


class SecretStore:
    """Looks secrets up in the environment, then Secrets Manager, caching remote answers."""

    def __init__(self, config: SecretsManagerConfig, fetch: RemoteFetch | None = None) -> None:
        self._config = config
        self._fetch = fetch if fetch is not None else _secrets_manager_fetch(config)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    async def get(self, name: str, *, default: str | None = None) -> str | None:
        """The secret `name`, or `default` when no source has it.

        Raises SecretError when Secrets Manager cannot be reached in time and there is
        no default to fall back on.
        """
        from_env = os.environ.get(name)
        if from_env is not None:
            register_secret(from_env)
            return from_env
        if not self._config.enabled:
            return default
        cached = self._cached(name)
        if cached is not None:
            return cached[0] if cached[0] is not None else default
        try:
            # The whole lookup is bounded: botocore's own timeouts do not cover DNS or retries.
            with anyio.fail_after(self._config.timeout_s * 2):
                value = await self._fetch(self._config.prefix + name)
        except Exception as exc:
            if default is not None:
                log.warning("secrets.backend_unavailable", secret=name, error=type(exc).__name__)
                return default
            raise SecretError(
                f"secret {name!r}: AWS Secrets Manager did not answer "
                f"({type(exc).__name__}); set it in the environment or retry"
            ) from None
        register_secret(value)
        with self._lock:
            self._cache[name] = (time.monotonic() + self._config.cache_ttl_s, value)
        return value if value is not None else default

    def _cached(self, name: str) -> tuple[str | None] | None:
        with self._lock:
            entry = self._cache.get(name)
        if entry is None or entry[0] < time.monotonic():
            return None
        return (entry[1],)


def _secrets_manager_fetch(config: SecretsManagerConfig) -> RemoteFetch:
    async def fetch(secret_id: str) -> str | None:
        from twitstack.core.aws import fetch_secret_string

        return await fetch_secret_string(
            secret_id,
            region=config.region,
            endpoint_url=config.endpoint_url,
            access_key_id=config.access_key_id,
            secret_access_key=config.secret_access_key,
            timeout_s=config.timeout_s,
        )

    return fetch


class _DefaultStore:
    """The store the module-level functions use: from `configure_secrets`, else lazy settings."""

    store: SecretStore | None = None

    def get(self) -> SecretStore:
        if self.store is None:
            from twitstack.core import config

            self.store = SecretStore(SecretsManagerConfig.from_settings(config.load_settings()))
        return self.store


_default = _DefaultStore()


def configure_secrets(settings: Settings) -> SecretStore:
    """Point `get_secret`/`aget_secret` at the backends named in `settings`."""
    _default.store = SecretStore(SecretsManagerConfig.from_settings(settings))
    return _default.store


async def aget_secret(name: str, *, default: str | None = None) -> str | None:
    """Async twin of `get_secret`, for daemon code."""
    return await _default.get().get(name, default=default)


def get_secret(name: str, *, default: str | None = None) -> str | None:
    """The secret `name`: environment → AWS Secrets Manager → `default`."""
    if not _in_event_loop():
        return anyio.run(lambda: aget_secret(name, default=default))
    # Called from inside an event loop: run the lookup on a private loop in a thread.
    result: list[str | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(anyio.run(lambda: aget_secret(name, default=default)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker, name="twitstack-get-secret", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _in_event_loop() -> bool:
    # twitstack runs on asyncio (aiosqlite, redis.asyncio and twscrape require it).
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
