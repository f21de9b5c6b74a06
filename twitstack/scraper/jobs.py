"""Job declarations checked at start: kinds, targets, proxy groups; one clear line per problem."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from twitstack.core.errors import ConfigError
from twitstack.core.sections.scraper import DraftRuleSpec, JobKind, JobSpec, ScraperSettings


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job, ready to run."""

    name: str
    kind: JobKind
    target: str
    interval_s: float
    limit: int
    proxy_group: str | None
    draft: DraftRuleSpec | None
    silent_after_s: float = 0.0  # 0: never judged silent

    @property
    def tweet_ids(self) -> list[int]:
        """For kind 'tweets': the ids to refresh."""
        return [int(x) for x in re.split(r"[,\s]+", self.target.strip()) if x]

    @property
    def uses_watermark(self) -> bool:
        return self.kind != "tweets"


def build_job(spec: JobSpec, settings: ScraperSettings) -> Job:
    return Job(
        name=spec.name,
        kind=spec.kind,
        target=spec.target.strip(),
        interval_s=spec.interval_s or settings.default_interval_s,
        limit=spec.limit,
        proxy_group=spec.proxy_group,
        draft=spec.draft,
        silent_after_s=(
            spec.silent_after_s
            if spec.silent_after_s is not None
            else settings.default_silent_after_s
        ),
    )


def load_jobs(settings: ScraperSettings, *, proxy_groups: Collection[str] = ()) -> list[Job]:
    """The enabled jobs; raises ConfigError listing every job that cannot run."""
    problems = [
        f"scraper.jobs.{spec.name}.proxy_group: no proxies in group {spec.proxy_group!r} "
        f"(groups in the proxy file: {sorted(proxy_groups) or 'none'})"
        for spec in settings.jobs
        if spec.enabled and spec.proxy_group is not None and spec.proxy_group not in proxy_groups
    ]
    group = settings.canary.proxy_group if settings.canary is not None else None
    if group is not None and group not in proxy_groups:
        problems.append(
            f"scraper.canary.proxy_group: no proxies in group {group!r} "
            f"(groups in the proxy file: {sorted(proxy_groups) or 'none'})"
        )
    if problems:
        raise ConfigError(problems)
    return [build_job(spec, settings) for spec in settings.jobs if spec.enabled]


def find_job(jobs: Sequence[Job], name: str) -> Job:
    for job in jobs:
        if job.name == name:
            return job
    known = ", ".join(j.name for j in jobs) or "none declared"
    raise ConfigError([f"scraper.jobs: no enabled job named {name!r} (known: {known})"])
