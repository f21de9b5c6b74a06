"""AWS through aioboto3: the only aioboto3 import (Secrets Manager and S3 clients)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError


def client_config(timeout_s: float) -> AioConfig:
    """Short timeouts and one attempt: callers decide about retries, never botocore."""
    return AioConfig(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
    )


@asynccontextmanager
async def open_aws_client(
    service: Literal["secretsmanager", "s3"],
    *,
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    timeout_s: float = 10.0,
) -> AsyncIterator[Any]:
    """An aioboto3 client for `service`, closed on exit."""
    session = aioboto3.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    async with session.client(
        service, endpoint_url=endpoint_url, config=client_config(timeout_s)
    ) as client:
        yield client


async def fetch_secret_string(
    secret_id: str,
    *,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    timeout_s: float,
) -> str | None:
    """The SecretString of `secret_id`, or None when Secrets Manager has no such secret."""
    async with open_aws_client(
        "secretsmanager",
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        timeout_s=timeout_s,
    ) as client:
        try:
            answer = await client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
    value = answer.get("SecretString")
    return value if isinstance(value, str) else None
