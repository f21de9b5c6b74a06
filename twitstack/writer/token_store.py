"""The writer's name for the sealed token store, which lives in the shared domain.

Moderation and the CLI connect X accounts and store their pair the same way the writer rotates
it (`twitstack.writes.token_store`); services never import each other, so it moved below them.
"""

from __future__ import annotations

from twitstack.writes.token_store import (
    DEV_KEY_FILE,
    SEALING_KEYS_SECRET,
    KeyRingSource,
    SealedTokenStore,
    StoredTokens,
    keyring_source,
)

__all__ = [
    "DEV_KEY_FILE",
    "SEALING_KEYS_SECRET",
    "KeyRingSource",
    "SealedTokenStore",
    "StoredTokens",
    "keyring_source",
]
