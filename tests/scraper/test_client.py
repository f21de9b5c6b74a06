"""The seed's ScraperClient: raw tweet JSON by id through twscrape, lazily loaded cookies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from twitstack.scraper.client import ScraperClient

pytestmark = pytest.mark.anyio


def _cookie_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookies.json"
    accounts = [{"username": "acc1", "cookies": {"auth_token": "t1", "ct0": "c1"}}]
    path.write_text(json.dumps({"accounts": accounts}))
    return path


async def test_get_tweets_returns_raw_json_in_order_and_counts_them(
    fake_x: Any, tmp_path: Path
) -> None:
    """Found tweets come back as X's JSON in the order asked, unknown ids are left out, the
    result survives a JSON round trip, and tweets_fetched_total counts what came back."""
    db = (tmp_path / "pool.db").absolute()
    client = ScraperClient(str(_cookie_file(tmp_path)), accounts_db=db, wait_timeout_s=5)
    assert not db.exists()  # cookies load on first use, not in the constructor
    tweets = fake_x.fake.corpus.tweets
    wanted = [tweets[150], tweets[3], tweets[77]]
    ids = [str(wanted[0].id), "1", str(wanted[1].id), str(wanted[2].id)]

    with anyio.fail_after(20):
        got = await client.get_tweets(ids)

    assert [raw["rest_id"] for raw in got] == [str(t.id) for t in wanted]
    for raw, synth in zip(got, wanted, strict=True):
        assert raw["legacy"]["full_text"] == synth.text
        assert raw["legacy"]["favorite_count"] == synth.likes
        author = raw["core"]["user_results"]["result"]["core"]["screen_name"]
        assert author == synth.author.screen_name
    assert json.loads(json.dumps(got)) == got
    assert client.registry.get_sample_value("tweets_fetched_total") == 3
    details = fake_x.fake.seen("TweetDetail")
    assert [r.variables["focalTweetId"] for r in details] == ids
    assert {r.account for r in details} == {"t1"}


async def test_counter_accumulates_across_calls_and_cookies_load_once(
    fake_x: Any, tmp_path: Path
) -> None:
    """A second call reuses the loaded pool (rotated cookies need a new client) and counts on."""
    db = (tmp_path / "pool.db").absolute()
    cookie_file = _cookie_file(tmp_path)
    client = ScraperClient(str(cookie_file), accounts_db=db, wait_timeout_s=5)
    first_id = str(fake_x.fake.corpus.tweets[10].id)
    with anyio.fail_after(20):
        assert len(await client.get_tweets([first_id])) == 1
        cookie_file.unlink()  # read once: a missing file no longer matters
        again = await client.get_tweets([first_id, str(fake_x.fake.corpus.tweets[11].id)])
    assert len(again) == 2
    assert client.registry.get_sample_value("tweets_fetched_total") == 3


async def test_without_an_accounts_db_the_configured_one_is_used(
    fake_x: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ScraperClient(cookies_path)` alone, as the seed calls it, keeps its pool at the
    settings' accounts_db under data_dir."""
    import os

    for key in [k for k in os.environ if k.startswith("TWITSTACK_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "twitstack.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    monkeypatch.setenv("TWITSTACK_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)  # no stray .env
    client = ScraperClient(str(_cookie_file(tmp_path)))
    with anyio.fail_after(20):
        got = await client.get_tweets([str(fake_x.fake.corpus.tweets[0].id)])
    assert len(got) == 1
    assert (tmp_path / "data" / "scraper-accounts.db").is_file()


def test_seed_import_works_without_loading_twscrape_early() -> None:
    """`from twitstack.scraper import ScraperClient` works; importing the package alone loads
    no twscrape (checked in a fresh interpreter)."""
    import subprocess
    import sys

    script = (
        "import sys, twitstack.scraper\n"
        "assert 'twscrape' not in sys.modules, 'package import loaded twscrape'\n"
        "from twitstack.scraper import ScraperClient\n"
        "from twitstack.scraper.client import ScraperClient as Direct\n"
        "assert ScraperClient is Direct\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
