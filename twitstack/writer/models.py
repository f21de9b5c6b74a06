"""The seed's public path for the write-request types; they live in `twitstack.writes.models`."""

from __future__ import annotations

from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

__all__ = ["ModerationStatus", "WriteAction", "WriteRequest"]
