"""Settings of the moderation service (its address is the seed's top-level api_host/api_port)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ModerationSettings(BaseModel):
    """How the moderation web UI and JSON API behave."""

    model_config = ConfigDict(extra="forbid", frozen=True)
