"""Draft templates are checked when the settings load: `config check` and start-up refuse them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.core.test_config_cli import twitstack
from tests.scraper.test_store import tweet
from twitstack.core.config import load
from twitstack.core.errors import ConfigError
from twitstack.core.sections.draft_template import TWEET_FIELDS, template_problem
from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.scraper import drafts
from twitstack.scraper.drafts import build_drafts

REPO = Path(__file__).resolve().parents[2]
_NOW = datetime(2026, 12, 1, tzinfo=UTC)
_BAD = """\
[[scraper.jobs]]
name = "mentions"
kind = "search"
target = "@team"
[scraper.jobs.draft]
template = "Thanks {{ tweet.author_username }}!"
as_account = "team"
"""


def _example_job_block() -> str:
    """The example config's commented `[[scraper.jobs]]` block and draft rule, uncommented."""
    text = (REPO / "twitstack.toml.example").read_text()
    lines = []
    for line in text[text.index("# [[scraper.jobs]]") :].splitlines():
        if not line.startswith("#"):
            break
        body = line.removeprefix("# ")
        if " = " in body or body.startswith("["):
            lines.append(body)
    return "\n".join(lines)


def test_example_draft_template_renders_a_draft(tmp_path: Path) -> None:
    """The example's job and draft rule, uncommented, load and draft a reply naming the author."""
    (tmp_path / "c.toml").write_text(_example_job_block() + "\n")
    spec = load(tmp_path / "c.toml", env_file=None).settings.scraper.jobs[0]
    assert spec.draft is not None
    t = tweet(5, text="help: this bug is back @yourbrand")
    made = build_drafts(spec.draft, [t], job=spec.name, now=_NOW)
    assert [d.request.payload["text"] for d in made] == [
        f"Thanks @{t.author_username}! We'll look into it."
    ]


def test_config_check_refuses_an_unknown_tweet_attribute_in_one_line(tmp_path: Path) -> None:
    """`config check` exits 2 with one line naming the field and the attribute."""
    (tmp_path / "bad.toml").write_text(_BAD)
    result = twitstack("config", "check", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("scraper.jobs.0.draft.template: template uses tweet.author_username")


def test_settings_refuse_the_template_at_start(tmp_path: Path) -> None:
    """Loading the settings (what `run` does first) fails on the same template."""
    (tmp_path / "bad.toml").write_text(_BAD)
    with pytest.raises(ConfigError, match=r"scraper\.jobs\.0\.draft\.template"):
        load(tmp_path / "bad.toml", env_file=None)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ tweet.author_username }}", "tweet.author_username, which does not exist"),
        ("{{ tweet['handle'] }}", "tweet.handle, which does not exist"),
        ("{{ author }}", "template uses author; only tweet and job exist"),
        ("{{ tweet.author ", "template does not parse"),
    ],
)
def test_template_problems_are_named(template: str, problem: str) -> None:
    """Unknown attributes, unknown variables and syntax errors each get one sentence."""
    assert problem in (template_problem(template) or "")
    with pytest.raises(ValidationError):
        DraftRuleSpec(template=template, as_account="team")


def test_every_documented_field_renders() -> None:
    """A template using every field the check allows renders (the view has exactly them)."""
    template = " ".join(f"{{{{ tweet.{name} }}}}" for name in TWEET_FIELDS) + " {{ job }}"
    rule = DraftRuleSpec(template=template, as_account="team")
    made = build_drafts(rule, [tweet(9, text="hello")], job="j", now=_NOW)
    assert len(made) == 1
    assert tuple(drafts._template_view(tweet(9))) == TWEET_FIELDS
    assert re.search(r"https://x\.com/\S+/status/9", made[0].request.payload["text"])
