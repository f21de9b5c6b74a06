"""get_secret: environment → AWS Secrets Manager (moto server on loopback) → default."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import anyio
import boto3
import pytest

from tests.support.moto import TEST_CREDENTIALS, moto_server
from twitstack.core.config import Settings
from twitstack.core.errors import SecretError
from twitstack.core.secrets import SecretsManagerConfig, SecretStore, configure_secrets, get_secret


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        client = boto3.client(
            "secretsmanager", region_name="us-east-1", endpoint_url=endpoint, **TEST_CREDENTIALS
        )
        client.create_secret(Name="twitstack/X_TOKEN", SecretString="token-from-aws")
        yield endpoint


def store_config(endpoint: str, *, timeout_s: float = 2.0) -> SecretsManagerConfig:
    return SecretsManagerConfig(
        enabled=True,
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        prefix="twitstack/",
        timeout_s=timeout_s,
        cache_ttl_s=60,
    )


@pytest.mark.anyio
async def test_environment_wins(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable in the environment is returned without asking AWS."""
    monkeypatch.setenv("X_TOKEN", "token-from-env")
    assert await SecretStore(store_config(moto_endpoint)).get("X_TOKEN") == "token-from-env"


@pytest.mark.anyio
async def test_secrets_manager_hit(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret missing from the environment comes from Secrets Manager, with the prefix."""
    monkeypatch.delenv("X_TOKEN", raising=False)
    assert await SecretStore(store_config(moto_endpoint)).get("X_TOKEN") == "token-from-aws"


@pytest.mark.anyio
async def test_miss_returns_default(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret nobody has yields the default."""
    monkeypatch.delenv("NOT_THERE", raising=False)
    store = SecretStore(store_config(moto_endpoint))
    assert await store.get("NOT_THERE", default="fallback") == "fallback"
    assert await store.get("NOT_THERE") is None


@pytest.mark.anyio
async def test_answers_are_cached(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second lookup within the TTL does not ask the backend again."""
    monkeypatch.delenv("X_TOKEN", raising=False)
    calls: list[str] = []

    async def fetch(secret_id: str) -> str | None:
        calls.append(secret_id)
        return "cached-value"

    store = SecretStore(store_config(moto_endpoint), fetch=fetch)
    assert await store.get("X_TOKEN") == "cached-value"
    assert await store.get("X_TOKEN") == "cached-value"
    assert calls == ["twitstack/X_TOKEN"]


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: an outage that would hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.anyio
async def test_outage_with_default_is_bounded(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that never answers yields the default after the timeout, not a hang."""
    monkeypatch.delenv("X_TOKEN", raising=False)
    store = SecretStore(store_config(silent_endpoint, timeout_s=0.3))
    with anyio.fail_after(10):
        assert await store.get("X_TOKEN", default="fallback") == "fallback"


@pytest.mark.anyio
async def test_outage_without_default_is_a_clear_error(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a default the outage is a SecretError naming the secret."""
    monkeypatch.delenv("X_TOKEN", raising=False)
    store = SecretStore(store_config(silent_endpoint, timeout_s=0.3))
    with anyio.fail_after(10), pytest.raises(SecretError, match="secret 'X_TOKEN'"):
        await store.get("X_TOKEN")


def test_sync_get_secret_uses_configured_backends(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    """The seed's synchronous get_secret goes through the same chain."""
    from pydantic import SecretStr

    monkeypatch.delenv("X_TOKEN", raising=False)
    settings = make_settings(
        aws_secrets_enabled=True,
        aws_secretsmanager_endpoint=moto_endpoint,
        aws_secrets_prefix="twitstack/",
        aws_access_key_id=SecretStr("testing"),
        aws_secret_access_key=SecretStr("testing"),
    )
    configure_secrets(settings)
    assert get_secret("X_TOKEN") == "token-from-aws"
    assert get_secret("MISSING_ONE", default="d") == "d"


def test_disabled_backend_never_calls_aws(make_settings: Callable[..., Settings]) -> None:
    """With Secrets Manager disabled (the default), a miss is the default at once."""
    configure_secrets(make_settings())
    assert get_secret("TWITSTACK_TEST_UNSET_SECRET", default="d") == "d"
