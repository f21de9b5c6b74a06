"""What the fake X has recorded: users, posts, DMs, deletions, and the snowflake id generator."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.config import SandboxUser

_TWITTER_EPOCH_MS = 1_288_834_974_657  # X's snowflake epoch (2010-11-04)


class SnowflakeIds:
    """Snowflake-like ids: milliseconds since X's epoch << 22, always increasing."""

    def __init__(self, clock: SandboxClock) -> None:
        self._clock = clock
        self._last = 0

    def next_id(self) -> str:
        """A new id, greater than every id issued before it."""
        millis = max(int(self._clock.now() * 1000) - _TWITTER_EPOCH_MS, 0)
        candidate = millis << 22
        # Several ids in one millisecond (or a clock that does not move) still increase.
        self._last = max(candidate, self._last + 1)
        return str(self._last)


@dataclass(frozen=True)
class StoredPost:
    """A post as the author wrote it (the timeline renders it the way X would)."""

    id: str
    author_id: str
    text: str
    created_at: float
    body: dict[str, Any]  # the accepted request body, for tests that inspect what was sent
    reply_to: str | None = None
    quote_of: str | None = None
    media_ids: tuple[str, ...] = ()
    # The id of the conversation's first post (its own id unless it is a reply), and the
    # author it answers: what X reports as `conversation_id` and `in_reply_to_user_id`.
    conversation_id: str = ""
    reply_to_user: str | None = None


@dataclass(frozen=True)
class StoredDirectMessage:
    """A direct message event."""

    id: str
    conversation_id: str
    sender_id: str
    recipient_id: str
    text: str
    created_at: float
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deletion:
    """A successful DELETE of a post."""

    post_id: str
    author_id: str
    deleted_at: float


def conversation_id(user_a: str, user_b: str) -> str:
    """X's one-to-one conversation id: the two user ids, smaller first."""
    low, high = sorted((user_a, user_b), key=int)
    return f"{low}-{high}"


def normalized_text(text: str) -> str:
    """The form X compares for duplicate detection: NFC."""
    return unicodedata.normalize("NFC", text)


@dataclass
class ContentStore:
    """Posts, DMs and deletions, in creation order; mutations never await, so they are atomic."""

    clock: SandboxClock
    users: dict[str, SandboxUser] = field(default_factory=dict)
    posts: dict[str, StoredPost] = field(default_factory=dict)
    deleted: dict[str, StoredPost] = field(default_factory=dict)
    deletions: list[Deletion] = field(default_factory=list)
    dms: list[StoredDirectMessage] = field(default_factory=list)
    # Posts by others that replies may target (the GraphQL fake's tweets, in the demo); kept
    # apart from `posts`, which holds what clients of this fake posted.
    world: dict[str, StoredPost] = field(default_factory=dict)
    ids: SnowflakeIds = field(init=False)

    def __post_init__(self) -> None:
        self.ids = SnowflakeIds(self.clock)

    def add_user(self, user: SandboxUser) -> None:
        """Make a user known (replaces one with the same id)."""
        self.users[user.id] = user

    def create_post(
        self,
        author_id: str,
        text: str,
        body: dict[str, Any],
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
        media_ids: tuple[str, ...] = (),
    ) -> StoredPost:
        """Record a new post and return it."""
        post_id = self.ids.next_id()
        parent = self.find_post(reply_to) if reply_to is not None else None
        post = StoredPost(
            id=post_id,
            author_id=author_id,
            text=text,
            created_at=self.clock.now(),
            body=body,
            reply_to=reply_to,
            quote_of=quote_of,
            media_ids=media_ids,
            conversation_id=(parent.conversation_id or parent.id) if parent else post_id,
            reply_to_user=parent.author_id if parent else None,
        )
        self.posts[post.id] = post
        return post

    def import_post(
        self, post_id: str, author_id: str, text: str, created_at: float, *,
        quote_of: str | None = None,
    ) -> StoredPost:  # fmt: skip
        """Make a post someone else wrote known under its own id, so replies can target it
        (a world shared with the GraphQL fake: drafts answer the tweets it serves)."""
        post = StoredPost(
            id=post_id, author_id=author_id, text=text, created_at=created_at,
            body={"text": text}, quote_of=quote_of,
        )  # fmt: skip
        self.world[post.id] = post
        return post

    def find_post(self, post_id: str) -> StoredPost | None:
        """A live post by id: posted through this fake, or imported into its world."""
        return self.posts.get(post_id) or self.world.get(post_id)

    def may_reply(self, user_id: str, target: StoredPost) -> bool:
        """X lets an API client reply only where the author engaged the replying account:
        its own post, a post that mentions it, or a post quoting one of its posts."""
        if target.author_id == user_id:
            return True
        user = self.users.get(user_id)
        if user is not None and re.search(
            rf"(?<![\w@])@{re.escape(user.username)}\b", target.text, re.IGNORECASE
        ):
            return True
        quoted = self.find_post(target.quote_of or "")
        return quoted is not None and quoted.author_id == user_id

    def find_duplicate(
        self, author_id: str, text: str, *, window_s: float, lookback: int
    ) -> StoredPost | None:
        """A live post by `author_id` with the same NFC text among the recent ones, if any."""
        wanted = normalized_text(text)
        since = self.clock.now() - window_s
        recent = [p for p in reversed(self.posts.values()) if p.author_id == author_id]
        for post in recent[:lookback]:
            if post.created_at < since:
                break
            if normalized_text(post.text) == wanted:
                return post
        return None

    def delete_post(self, post_id: str) -> StoredPost:
        """Remove a live post (KeyError if unknown or already deleted)."""
        post = self.posts.pop(post_id)
        self.deleted[post_id] = post
        self.deletions.append(Deletion(post_id, post.author_id, self.clock.now()))
        return post

    def timeline(self, user_id: str) -> list[StoredPost]:
        """The user's live posts, newest first."""
        return [p for p in reversed(self.posts.values()) if p.author_id == user_id]

    def send_dm(
        self, sender_id: str, recipient_id: str, text: str, attachments: tuple[str, ...] = ()
    ) -> StoredDirectMessage:
        """Record a one-to-one message and return it."""
        message = StoredDirectMessage(
            id=self.ids.next_id(),
            conversation_id=conversation_id(sender_id, recipient_id),
            sender_id=sender_id,
            recipient_id=recipient_id,
            text=text,
            created_at=self.clock.now(),
            attachments=attachments,
        )
        self.dms.append(message)
        return message

    def conversation(self, user_id: str, participant_id: str) -> list[StoredDirectMessage]:
        """Events of the one-to-one conversation, newest first."""
        wanted = conversation_id(user_id, participant_id)
        return [m for m in reversed(self.dms) if m.conversation_id == wanted]

    def post_text_counts(self) -> Counter[str]:
        """How many posts (live or deleted) carry each NFC text: duplicates show as counts > 1."""
        all_posts = [*self.posts.values(), *self.deleted.values()]
        return Counter(normalized_text(p.text) for p in all_posts)

    def dm_text_counts(self) -> Counter[str]:
        """How many DMs carry each NFC text."""
        return Counter(normalized_text(m.text) for m in self.dms)

    def clear(self) -> None:
        """Forget all content (users stay)."""
        self.posts.clear()
        self.deleted.clear()
        self.deletions.clear()
        self.dms.clear()
