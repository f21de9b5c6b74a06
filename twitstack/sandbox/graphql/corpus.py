"""A deterministic, seeded world of synthetic users, tweets, replies and lists for the fake."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_TWITTER_EPOCH_MS = 1288834974657
_START = datetime(2026, 1, 1, tzinfo=UTC)
_WORDS = tuple(
    (  # noqa: SIM905 - a word list reads better as prose than as 32 quoted items
        "python anyio redis sqlite scraper release bug fix deploy queue worker latency "
        "metrics grafana timeline cursor graphql moderation draft reply quote launch "
        "benchmark cache index storage archive bucket account proxy schedule lease"
    ).split()
)
_LANGS = ("en", "en", "en", "de", "fr", "ja")


@dataclass(frozen=True)
class SynthUser:
    """A synthetic X account."""

    id: int
    screen_name: str
    name: str
    followers: int


@dataclass(frozen=True)
class SynthTweet:
    """A synthetic tweet; ids are snowflakes so they sort by time like X's."""

    id: int
    author: SynthUser
    text: str
    created_at: datetime
    lang: str
    likes: int
    retweets: int
    replies: int
    quotes: int
    views: int
    mentions: tuple[SynthUser, ...] = ()
    in_reply_to: SynthTweet | None = None
    quoted: SynthTweet | None = None
    # Served with fields X never sends (a count that is not a number), to test quarantine.
    malformed: bool = False

    @property
    def conversation_id(self) -> int:
        root: SynthTweet = self
        while root.in_reply_to is not None:
            root = root.in_reply_to
        return root.id


def snowflake(when: datetime, seq: int) -> int:
    """An X-style id for a tweet created at `when` (seq disambiguates the same millisecond)."""
    ms = int(when.timestamp() * 1000) - _TWITTER_EPOCH_MS
    return (ms << 22) | (seq & 0x3FFFFF)


@dataclass
class SynthCorpus:
    """Users, tweets (newest last) and lists, all derived from one seed."""

    seed: int = 0
    users: list[SynthUser] = field(default_factory=list)
    tweets: list[SynthTweet] = field(default_factory=list)
    lists: dict[int, tuple[int, ...]] = field(default_factory=dict)  # list id -> member ids
    _rng: random.Random = field(init=False, repr=False)
    _clock: datetime = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._clock = _START

    @classmethod
    def generate(
        cls, *, seed: int = 0, users: int = 20, tweets: int = 200, team: str = "team"
    ) -> SynthCorpus:
        """A corpus with `users` accounts (the first is @`team`, whom a quarter of the tweets
        mention), `tweets` tweets and one list."""
        corpus = cls(seed=seed)
        for i in range(users):
            name = team if i == 0 else f"user{i:03d}"
            corpus.users.append(
                SynthUser(
                    id=1000 + i,
                    screen_name=name,
                    name=name.title(),
                    followers=corpus._rng.randint(0, 50_000),
                )
            )
        corpus.lists[7001] = tuple(u.id for u in corpus.users[1 : max(2, users // 2)])
        corpus.add_tweets(tweets)
        return corpus

    def add_tweets(
        self, count: int, *, text: str | None = None, malformed: bool = False
    ) -> list[SynthTweet]:
        """Append `count` newer tweets (optionally all with `text`, or malformed); returns them."""
        added = []
        rng = self._rng
        for _ in range(count):
            self._clock += timedelta(seconds=rng.randint(5, 120))
            author = rng.choice(self.users[1:] or self.users)
            mentions: tuple[SynthUser, ...] = ()
            if rng.random() < 0.25:
                mentions = (self.users[0],)
            in_reply_to = None
            if self.tweets and rng.random() < 0.3:
                in_reply_to = rng.choice(self.tweets[-50:])
            quoted = None
            if self.tweets and in_reply_to is None and rng.random() < 0.1:
                quoted = rng.choice(self.tweets[-50:])
            body = text or " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 14)))
            prefix = " ".join(f"@{m.screen_name}" for m in mentions)
            tweet = SynthTweet(
                id=snowflake(self._clock, len(self.tweets)),
                author=author,
                text=f"{prefix} {body}".strip(),
                created_at=self._clock,
                lang=rng.choice(_LANGS),
                likes=rng.randint(0, 500),
                retweets=rng.randint(0, 100),
                replies=rng.randint(0, 40),
                quotes=rng.randint(0, 10),
                views=rng.randint(10, 100_000),
                mentions=mentions,
                in_reply_to=in_reply_to,
                quoted=quoted,
                malformed=malformed,
            )
            self.tweets.append(tweet)
            added.append(tweet)
        return added

    # queries ---------------------------------------------------------------------------------

    def by_id(self, tweet_id: int) -> SynthTweet | None:
        return next((t for t in self.tweets if t.id == tweet_id), None)

    def user_by_name(self, screen_name: str) -> SynthUser | None:
        wanted = screen_name.lower()
        return next((u for u in self.users if u.screen_name.lower() == wanted), None)

    def user_by_id(self, user_id: int) -> SynthUser | None:
        return next((u for u in self.users if u.id == user_id), None)

    def search(self, raw_query: str) -> list[SynthTweet]:
        """Tweets matching a query, newest first; understands since_id:, from:, lang:."""
        since_id = 0
        author = lang = None
        words = []
        for token in raw_query.split():
            if m := re.fullmatch(r"since_id:(\d+)", token):
                since_id = int(m.group(1))
            elif m := re.fullmatch(r"from:@?(\w+)", token):
                author = m.group(1).lower()
            elif m := re.fullmatch(r"lang:(\w+)", token):
                lang = m.group(1)
            else:
                words.append(token.lower())
        hits = [
            t
            for t in self.tweets
            if t.id > since_id
            and (author is None or t.author.screen_name.lower() == author)
            and (lang is None or t.lang == lang)
            and all(w in t.text.lower() for w in words)
        ]
        return hits[::-1]

    def timeline(self, user_id: int) -> list[SynthTweet]:
        """A user's own tweets (not replies), newest first."""
        return [t for t in reversed(self.tweets) if t.author.id == user_id and not t.in_reply_to]

    def list_timeline(self, list_id: int) -> list[SynthTweet]:
        members = set(self.lists.get(list_id, ()))
        return [t for t in reversed(self.tweets) if t.author.id in members]

    def replies_to(self, tweet_id: int) -> list[SynthTweet]:
        """Direct replies to a tweet, oldest first (X's conversation order)."""
        return [
            t for t in self.tweets if t.in_reply_to is not None and t.in_reply_to.id == tweet_id
        ]
