"""The scraper's settings section: accounts, jobs, schedules, storage, archive and health."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twitstack.core.sections.draft_template import template_problem

JobKind = Literal["tweets", "search", "user_tweets", "replies", "list"]

_JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SCREEN_NAME = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")
_NUMERIC_ID = re.compile(r"^[0-9]{1,20}$")


class DraftRuleSpec(BaseModel):
    """Turns new matching tweets of a job into pending reply/quote drafts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["reply", "quote"] = "reply"
    # Jinja2 (sandboxed) template; sees `tweet` (draft_template.TWEET_FIELDS: id, author,
    # text, counts, url, ...) and `job`. Checked when the settings load.
    template: str = Field(min_length=1)
    # The account that would post the draft: X refuses API replies to authors who did not
    # mention or quote it, so drafts are checked against it.
    as_account: str
    # The writer's account key that would post it (twitstack.writes' `account`).
    writer_account: str = "default"
    match_any: tuple[str, ...] = ()
    match_regex: str | None = None
    min_likes: int = Field(default=0, ge=0)
    langs: tuple[str, ...] = ()
    max_per_run: int = Field(default=10, ge=1, le=1000)

    @field_validator("as_account")
    @classmethod
    def _screen_name(cls, value: str) -> str:
        if not _SCREEN_NAME.match(value):
            raise ValueError(f"expected an X screen name like @team, got {value!r}")
        return value.lstrip("@")

    @field_validator("template")
    @classmethod
    def _renderable(cls, value: str) -> str:
        problem = template_problem(value)
        if problem is not None:
            raise ValueError(f"{problem}, got {value!r}")
        return value

    @field_validator("match_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"match_regex does not compile: {exc}") from exc
        return value


class JobSpec(BaseModel):
    """One scrape job declared in the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: JobKind
    # tweets: ids separated by commas/spaces; search: the query; user_tweets: screen name or
    # user id; replies: the tweet id; list: the list id.
    target: str = Field(min_length=1)
    interval_s: float | None = Field(default=None, gt=0)
    limit: int = Field(default=200, ge=1, le=100_000)
    proxy_group: str | None = None
    enabled: bool = True
    draft: DraftRuleSpec | None = None
    # How long this job may find no tweets at all before it is suspicious (the
    # TwitstackScrapeJobSilent alert); unset: [scraper] default_silent_after_s; 0: never.
    silent_after_s: float | None = Field(default=None, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _JOB_NAME.match(value):
            raise ValueError(
                f"expected lowercase letters, digits, '-' or '_' (max 64), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _target_fits_kind(self) -> JobSpec:
        target = self.target.strip()
        if self.kind == "tweets":
            ids = [x for x in re.split(r"[,\s]+", target) if x]
            bad = [x for x in ids if not _NUMERIC_ID.match(x)]
            if not ids or bad:
                raise ValueError(f"kind 'tweets' needs numeric tweet ids, got {target!r}")
        elif self.kind in ("replies", "list") and not _NUMERIC_ID.match(target):
            raise ValueError(f"kind {self.kind!r} needs a numeric id, got {target!r}")
        elif self.kind == "user_tweets" and not (
            _NUMERIC_ID.match(target) or _SCREEN_NAME.match(target)
        ):
            raise ValueError(f"kind 'user_tweets' needs a screen name or user id, got {target!r}")
        return self


class CanarySpec(BaseModel):
    """A query that always has results while twscrape still speaks X's GraphQL: when it finds
    nothing, X changed (TwitstackGraphQLDrift); when only a job finds nothing, it is quiet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["search", "user_tweets", "list"] = "search"
    # search: a query busy at every hour; user_tweets: a screen name or id; list: a list id.
    target: str = Field(min_length=1)
    interval_s: float = Field(default=900.0, gt=0)
    min_tweets: int = Field(default=1, ge=1, le=100)
    proxy_group: str | None = None

    @model_validator(mode="after")
    def _target_fits_kind(self) -> CanarySpec:
        target = self.target.strip()
        if self.kind == "list" and not _NUMERIC_ID.match(target):
            raise ValueError(f"kind 'list' needs a numeric list id, got {target!r}")
        if self.kind == "user_tweets" and not (
            _NUMERIC_ID.match(target) or _SCREEN_NAME.match(target)
        ):
            raise ValueError(f"kind 'user_tweets' needs a screen name or user id, got {target!r}")
        return self


class ScraperSettings(BaseModel):
    """Settings of the scraper service (`[scraper]` in the config file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # twscrape's accounts database; relative paths are a cron trap (twscrape #209), so a
    # relative value is resolved against the data directory at start.
    accounts_db: Path = Path("scraper-accounts.db")
    store_db: Path = Path("scraper.db")
    metrics_port: int | None = Field(default=9103, ge=0, le=65535)
    jobs: tuple[JobSpec, ...] = ()
    default_interval_s: float = Field(default=900.0, gt=0)
    # Jobs without their own silent_after_s may find nothing this long before alerting; 0: never.
    default_silent_after_s: float = Field(default=86400.0, ge=0)
    # One canary query for this scraper's account pool; unset: no canary.
    canary: CanarySpec | None = None
    # Each wait is interval * (1 ± jitter_fraction) so replicas and jobs drift apart.
    jitter_fraction: float = Field(default=0.1, ge=0, le=0.5)
    retention_days: int = Field(default=90, ge=0)  # 0 keeps tweets forever
    upsert_batch_size: int = Field(default=500, ge=1, le=10_000)
    # twscrape waits at most this long for a free account, then raises instead of hanging.
    account_wait_timeout_s: float = Field(default=30.0, ge=0)
    account_wait_interval_s: float = Field(default=1.0, gt=0)
    lease_ttl_s: float = Field(default=60.0, gt=0)
    health_probe_interval_s: float = Field(default=3600.0, gt=0)
    quarantine_reprobe_interval_s: float = Field(default=6 * 3600.0, gt=0)
    probe_screen_name: str = "XDevelopers"
    # An account that saw errors this recently makes a zero-result run suspect.
    suspect_error_window_s: float = Field(default=900.0, gt=0)
    # The bucket and endpoint are the seed's top-level minio_* / aws_* settings.
    archive_enabled: bool = False
    archive_prefix: str = "tweets"
    archive_attempts: int = Field(default=5, ge=1, le=20)
    # Points twscrape at a GraphQL fake (the sandbox / embedded demo) and stubs its
    # x-client-transaction-id generator so nothing reaches x.com. Loopback only.
    graphql_url_override: str | None = None

    @field_validator("probe_screen_name")
    @classmethod
    def _probe_name(cls, value: str) -> str:
        if not _SCREEN_NAME.match(value):
            raise ValueError(f"expected an X screen name, got {value!r}")
        return value.lstrip("@")

    @field_validator("graphql_url_override")
    @classmethod
    def _loopback_only(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\]):", value):
            raise ValueError(f"expected a loopback http:// URL for the GraphQL fake, got {value!r}")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _unique_job_names(self) -> ScraperSettings:
        seen: set[str] = set()
        for job in self.jobs:
            if job.name in seen:
                raise ValueError(f"job names must be unique; {job.name!r} appears twice")
            seen.add(job.name)
        return self

    def job(self, name: str) -> JobSpec | None:
        """The declared job called `name`, if any."""
        return next((j for j in self.jobs if j.name == name), None)
