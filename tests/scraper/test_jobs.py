"""Job declarations are validated with one clear message per problem."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from twitstack.core.errors import ConfigError
from twitstack.core.sections.scraper import JobSpec, ScraperSettings
from twitstack.scraper.jobs import load_jobs
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.schedule import JobSchedule


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("tweets", "12, abc", "numeric tweet ids"),
        ("list", "my-list", "needs a numeric id"),
        ("user_tweets", "not a name!", "screen name or user id"),
    ],
)
def test_bad_targets_are_rejected(kind: str, target: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JobSpec(name="j", kind=kind, target=target)  # type: ignore[arg-type]


def test_duplicate_job_names_are_rejected() -> None:
    job = {"name": "j", "kind": "search", "target": "x"}
    with pytest.raises(ValidationError, match="appears twice"):
        ScraperSettings.model_validate({"jobs": [job, job]})


def test_unknown_proxy_group_is_a_config_error() -> None:
    settings = ScraperSettings.model_validate(
        {"jobs": [{"name": "j", "kind": "search", "target": "x", "proxy_group": "eu"}]}
    )
    with pytest.raises(ConfigError, match="no proxies in group 'eu'"):
        load_jobs(settings, proxy_groups=ProxyPool.parse("us http://p:1").groups)


def test_proxies_rotate_within_their_group() -> None:
    pool = ProxyPool.parse("http://a:1\neu http://b:1\neu http://c:1  # spare\n")
    assert pool.current("eu") == "http://b:1"
    assert pool.rotate("eu") == "http://c:1"
    assert pool.assign(["x", "y"], "eu") == {"x": "http://b:1", "y": "http://c:1"}


def test_an_overrunning_run_delays_the_next_instead_of_doubling() -> None:
    schedule = JobSchedule(100.0, 0.1, random.Random(1))
    on_time = schedule.next_run_at(started_at=0.0, finished_at=5.0)
    assert 90.0 <= on_time <= 110.0
    assert schedule.next_run_at(started_at=0.0, finished_at=250.0) == 250.0
