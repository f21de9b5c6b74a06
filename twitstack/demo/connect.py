"""The demo's connected account, made through the same PKCE flow an admin uses."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.core.secrets import aget_secret
from twitstack.writes.token_store import SealedTokenStore, keyring_source
from twitstack.writes.x_accounts import ConnectedAccount, ConnectedAccounts
from twitstack.writes.x_connect import XConnector, connect_config
from twitstack.writes.x_oauth import XOAuthClient

# The sandbox's second user, so the demo shows a connected account beside the TOML one.
CONNECTED_LABEL = "friend"
CONNECTED_USER_ID = "1001"  # @twitstack_friend


async def connect_demo_account(settings: Settings, redis: Redis) -> ConnectedAccount:
    """Connect @twitstack_friend: start, consent at the fake X, finish (as a browser would)."""
    config = await connect_config(settings.writer, aget_secret)
    store = SealedTokenStore(
        redis, keyring_source(aget_secret, env=settings.env, data_dir=settings.state_dir)
    )
    async with httpx.AsyncClient(timeout=10) as http:
        await http.put(
            f"{config.api_base}/_sandbox/oauth2/consent", json={"user_id": CONNECTED_USER_ID}
        )
        oauth = XOAuthClient(
            http, api_base=config.api_base, client_id=config.client_id, client_secret=None
        )
        connector = XConnector(
            redis, ConnectedAccounts(redis, store), oauth, config,
            configured=[a.name for a in settings.writer.accounts],
        )  # fmt: skip
        started = await connector.start(
            CONNECTED_LABEL, ["posting", "dms", "dm_read_back"], actor="demo"
        )
        consent = await http.get(started.url)
        query = dict(parse_qsl(urlsplit(consent.headers["location"]).query))
        account = (await connector.finish(query, actor="demo")).account
        # Connects made from the UI consent as the demo's main user again.
        await http.put(f"{config.api_base}/_sandbox/oauth2/consent", json={"user_id": "1000"})
    return account
