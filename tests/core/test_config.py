"""Settings: sources and their precedence, validation messages, the lazy accessor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from twitstack.core.config import Settings, load
from twitstack.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TWITSTACK_* variables from the outside, and a cwd without config files."""
    for key in list(os.environ):
        if key.startswith("TWITSTACK_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class TestPrecedence:
    def test_default_when_no_source_sets_it(self, clean_env: Path) -> None:
        """Without any source, the seed's default applies."""
        settings = load(write(clean_env / "c.toml", ""), env_file=None).settings
        assert settings.api_port == 8000
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.writer.metrics_port == 9102
        assert settings.scraper.metrics_port == 9103

    def test_toml_beats_default(self, clean_env: Path) -> None:
        """A value in the TOML file replaces the default."""
        config = write(clean_env / "c.toml", "api_port = 8101\n[writer]\nmetrics_port = 9201\n")
        settings = load(config, env_file=None).settings
        assert (settings.api_port, settings.writer.metrics_port) == (8101, 9201)

    def test_dotenv_beats_toml(self, clean_env: Path) -> None:
        """.env beats the TOML file, nested keys included."""
        config = write(clean_env / "c.toml", "api_port = 8101\n[writer]\nmetrics_port = 9201\n")
        dotenv = write(
            clean_env / ".env", "TWITSTACK_API_PORT=8102\nTWITSTACK_WRITER__METRICS_PORT=9202\n"
        )
        settings = load(config, env_file=dotenv).settings
        assert (settings.api_port, settings.writer.metrics_port) == (8102, 9202)

    def test_environment_beats_dotenv(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A TWITSTACK_ variable beats .env."""
        config = write(clean_env / "c.toml", "api_port = 8101\n")
        dotenv = write(clean_env / ".env", "TWITSTACK_API_PORT=8102\n")
        monkeypatch.setenv("TWITSTACK_API_PORT", "8103")
        assert load(config, env_file=dotenv).settings.api_port == 8103

    def test_override_beats_environment(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Explicit overrides beat everything."""
        monkeypatch.setenv("TWITSTACK_API_PORT", "8103")
        config = write(clean_env / "c.toml", "")
        assert load(config, env_file=None, api_port=8104).settings.api_port == 8104

    def test_env_keeps_other_toml_keys_of_a_section(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Setting one nested key from the environment keeps the section's other TOML keys."""
        config = write(clean_env / "c.toml", "[supervisor]\nshutdown_grace_s = 3\n")
        monkeypatch.setenv("TWITSTACK_SUPERVISOR__CRASH_LOOP_MAX_CRASHES", "9")
        supervisor = load(config, env_file=None).settings.supervisor
        assert (supervisor.shutdown_grace_s, supervisor.crash_loop_max_crashes) == (3, 9)


class TestConfigFileDiscovery:
    def test_twitstack_config_variable_names_the_file(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$TWITSTACK_CONFIG is read when --config is not given."""
        config = write(clean_env / "elsewhere.toml", "api_port = 8111\n")
        monkeypatch.setenv("TWITSTACK_CONFIG", str(config))
        loaded = load(env_file=None)
        assert loaded.config_path == config
        assert loaded.settings.api_port == 8111

    def test_local_twitstack_toml_is_found(self, clean_env: Path) -> None:
        """./twitstack.toml is used when nothing else names a file."""
        write(clean_env / "twitstack.toml", "api_port = 8112\n")
        assert load(env_file=None).settings.api_port == 8112


class TestValidation:
    def test_bad_redis_url_is_one_clear_line(self, clean_env: Path) -> None:
        """The message names the field, what was expected and what was found."""
        config = write(clean_env / "c.toml", 'redis_url = "foo"\n')
        with pytest.raises(ConfigError) as caught:
            load(config, env_file=None)
        assert caught.value.problems == [
            "redis_url: expected a redis:// or rediss:// or unix:// URL, got 'foo'"
        ]

    def test_unknown_key_is_named(self, clean_env: Path) -> None:
        """A typo in the TOML file is an error naming the key, not silently ignored."""
        config = write(clean_env / "c.toml", "[writer]\nmetrics_prot = 1\n")
        with pytest.raises(ConfigError) as caught:
            load(config, env_file=None)
        assert len(caught.value.problems) == 1
        assert caught.value.problems[0].startswith("writer.metrics_prot: unknown setting")

    def test_one_line_per_bad_field(self, clean_env: Path) -> None:
        """Every bad field gets its own line."""
        config = write(clean_env / "c.toml", 'api_port = -1\nenv = "staging"\nlog_level = 3\n')
        with pytest.raises(ConfigError) as caught:
            load(config, env_file=None)
        fields = sorted(line.split(":")[0] for line in caught.value.problems)
        assert fields == ["api_port", "env", "log_level"]

    def test_unreadable_file_is_one_line_with_the_path(self, clean_env: Path) -> None:
        """A missing or unreadable file is reported with its path."""
        missing = clean_env / "missing.toml"
        with pytest.raises(ConfigError) as caught:
            load(missing, env_file=None)
        assert caught.value.problems == [
            f"cannot read config file {missing}: No such file or directory"
        ]

    def test_invalid_toml_names_the_file(self, clean_env: Path) -> None:
        """Broken TOML is reported with the path and the parser's position."""
        config = write(clean_env / "c.toml", "api_port = = 3\n")
        with pytest.raises(ConfigError) as caught:
            load(config, env_file=None)
        assert caught.value.problems[0].startswith(f"config file {config} is not valid TOML")

    def test_secret_values_are_not_echoed(self, clean_env: Path) -> None:
        """A bad secret field is named but its value never printed."""
        config = write(clean_env / "c.toml", "minio_secret_key = 12\n")
        with pytest.raises(ConfigError) as caught:
            load(config, env_file=None)
        assert "12" not in "\n".join(caught.value.problems)


class TestDataDir:
    def test_dev_defaults_to_local_data(self, clean_env: Path) -> None:
        """env=dev keeps state in ./data."""
        assert load(write(clean_env / "c.toml", ""), env_file=None).settings.state_dir == Path(
            "data"
        )

    def test_prod_defaults_to_var_lib(self, clean_env: Path) -> None:
        """env=prod keeps state where systemd's StateDirectory puts it."""
        config = write(clean_env / "c.toml", 'env = "prod"\n')
        assert load(config, env_file=None).settings.state_dir == Path("/var/lib/twitstack")


def settings_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a config file can set, nested models and list-of-table items included."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        for candidate in (field.annotation, *get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys += settings_keys(candidate, f"{prefix}{name}.")
            for inner in get_args(candidate):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    keys += settings_keys(inner, f"{prefix}{name}.")
    return keys


def test_example_config_is_valid(clean_env: Path) -> None:
    """twitstack.toml.example loads without errors."""
    loaded = load(REPO / "twitstack.toml.example", env_file=None)
    assert loaded.settings.env == "dev"


@pytest.mark.parametrize("key", sorted(set(settings_keys(Settings))))
def test_example_config_documents_every_key(key: str) -> None:
    """Every settings key appears in the example (set or commented) right after a comment."""
    lines = (REPO / "twitstack.toml.example").read_text().splitlines()
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(rf"^(# ?)?({re.escape(leaf)} = |\[+{re.escape(key)}\]+)")
    found = [i for i, line in enumerate(lines) if pattern.match(line.strip())]
    assert found, f"{key} is not in twitstack.toml.example"
    assert any(_commented(lines, i) for i in found), f"{key} has no comment explaining it"


def _commented(lines: list[str], index: int) -> bool:
    """A comment on the line, or in the block of lines right above it (keys may share one)."""
    if " # " in lines[index]:
        return True
    for line in reversed(lines[:index]):
        if not line.strip():
            return False
        if (
            line.lstrip().startswith("#")
            and " = " not in line
            and not line.lstrip("# ").startswith("[")
        ):
            return True
    return False


def test_importing_config_reads_nothing(tmp_path: Path) -> None:
    """`import twitstack.core.config` does not load settings; `.settings` does, lazily."""
    config = write(tmp_path / "c.toml", "api_port = 8123\n")
    script = (
        "import twitstack.core.config as c\n"
        "assert c._lazy._loaded is None\n"
        "from twitstack.core.config import settings\n"
        "print(settings.api_port)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    env["TWITSTACK_CONFIG"] = str(config)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "8123"
