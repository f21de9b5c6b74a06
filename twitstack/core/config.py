"""The one settings object: pydantic-settings over overrides, env, .env, TOML and defaults.

Sources, highest first: explicit overrides → environment (`TWITSTACK_` prefix, `__` for
nesting) → `.env` → the TOML file → defaults. The TOML file is `--config PATH`, else
`$TWITSTACK_CONFIG`, else `./twitstack.toml`, else `/etc/twitstack/twitstack.toml`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from twitstack.core.errors import ConfigError
from twitstack.core.sections.media import MediaSettings
from twitstack.core.sections.moderation import ModerationSettings
from twitstack.core.sections.notifier import NotifierSettings
from twitstack.core.sections.scraper import ScraperSettings
from twitstack.core.sections.spend import SpendSettings
from twitstack.core.sections.supervisor import SupervisorSettings
from twitstack.core.sections.writer import WriterSettings
from twitstack.core.url_masking import mask_url_credentials, mask_url_value

ENV_PREFIX = "TWITSTACK_"
CONFIG_ENV_VAR = "TWITSTACK_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("twitstack.toml"), Path("/etc/twitstack/twitstack.toml"))
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
PROD_DATA_DIR = Path("/var/lib/twitstack")  # systemd's StateDirectory=twitstack


class Settings(BaseSettings):
    """Everything twitstack can be told; each service reads only its own section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    # "dev": readable console logs and ./data; "prod": JSON logs and /var/lib/twitstack.
    env: Literal["dev", "prod"] = "dev"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    redis_url: str = "redis://redis:6379/0"
    redis_max_connections: int = Field(default=64, ge=2, le=10_000)
    # Where every SQLite file and piece of local state lives; created 0700 at start.
    data_dir: Path | None = None
    cookie_path: Path = Path("/opt/twitstack/cookies.json")
    proxy_file: Path = Path("/opt/twitstack/proxies.txt")
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8000, ge=0, le=65535)

    # S3-compatible archive (MinIO or AWS S3) for scraped tweets.
    minio_endpoint: str | None = None
    minio_access_key: SecretStr | None = None
    minio_secret_key: SecretStr | None = None
    minio_bucket: str = "twitstack-archive"
    minio_secure: bool = True
    minio_region: str = "us-east-1"

    # AWS credentials and Secrets Manager, the second source of get_secret().
    aws_region: str = "us-east-1"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_secretsmanager_endpoint: str | None = None
    aws_secrets_enabled: bool = False
    aws_secrets_prefix: str = ""
    aws_secrets_cache_ttl_s: float = Field(default=300.0, ge=0)
    aws_timeout_s: float = Field(default=3.0, gt=0, le=60)

    supervisor: SupervisorSettings = SupervisorSettings()
    writer: WriterSettings = WriterSettings()
    moderation: ModerationSettings = ModerationSettings()
    scraper: ScraperSettings = ScraperSettings()
    media: MediaSettings = MediaSettings()
    notifier: NotifierSettings = NotifierSettings()
    spend: SpendSettings = SpendSettings()

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(REDIS_SCHEMES):
            # Masked here: the generic masker needs `scheme://`, which a typo may lack.
            got = mask_url_value(value)
            raise ValueError(f"expected a redis:// or rediss:// or unix:// URL, got {got!r}")
        return value

    @model_validator(mode="after")
    def _default_data_dir(self) -> Settings:
        if self.data_dir is None:
            default = Path("data") if self.env == "dev" else PROD_DATA_DIR
            object.__setattr__(self, "data_dir", default)
        return self

    @property
    def state_dir(self) -> Path:
        """`data_dir`, resolved (never None after validation)."""
        assert self.data_dir is not None  # set by _default_data_dir
        return self.data_dir

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TomlSource(settings_cls, _toml_data.get() or {})
        return init_settings, env_settings, dotenv_settings, toml


class _TomlSource(PydanticBaseSettingsSource):
    """The already-parsed TOML file (parsed by `read_config_file` for clear errors)."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


# The TOML data for the Settings() call in progress (pydantic-settings builds sources per call).
_toml_data: ContextVar[Mapping[str, Any] | None] = ContextVar("twitstack_toml_data", default=None)


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where they came from, for `config show`."""

    settings: Settings
    config_path: Path | None
    toml: Mapping[str, Any]
    overrides: Mapping[str, Any]


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to read: explicit, else $TWITSTACK_CONFIG, else the default paths."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    return next((path for path in DEFAULT_CONFIG_PATHS if path.is_file()), None)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, failing with one line that names the path."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read config file {path}: {exc.strerror}"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from None


def load(
    config_path: str | os.PathLike[str] | None = None,
    *,
    env_file: str | Path | None = ".env",
    **overrides: Any,
) -> LoadedSettings:
    """Load and validate settings from every source; raise ConfigError with one line per field."""
    path = find_config_file(config_path)
    toml = read_config_file(path) if path is not None else {}
    token = _toml_data.set(toml)
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    finally:
        _toml_data.reset(token)
    return LoadedSettings(settings, path, toml, overrides)


def load_settings(config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load settings from every source (see `load`)."""
    return load(config_path, **overrides).settings


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per bad field: `path: what was expected, got what`. Secrets are never echoed."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(settings)"
        if error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown setting (a typo? see twitstack.toml.example)")
            continue
        message = error["msg"].removeprefix("Value error, ")
        if "got " not in message and not _is_secret_path(where):
            message = f"{message}, got {error.get('input')!r}"
        # The input (or a validator's message quoting it) may be a URL with a password.
        lines.append(mask_url_credentials(f"{where}: {message}"))
    return lines


def _is_secret_path(path: str) -> bool:
    lowered = path.lower()
    return any(word in lowered for word in ("secret", "token", "password", "key"))


class _LazySettings:
    """The seed's `twitstack.core.config.settings`: loaded on first use, then cached."""

    _loaded: Settings | None = None

    def get(self) -> Settings:
        if self._loaded is None:
            self._loaded = load_settings()
        return self._loaded


_lazy = _LazySettings()


def __getattr__(name: str) -> Any:
    # Module-level lazy attribute: importing this module reads nothing until `settings` is used.
    if name == "settings":
        return _lazy.get()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LoadedSettings",
    "Settings",
    "find_config_file",
    "load",
    "load_settings",
    "read_config_file",
]
