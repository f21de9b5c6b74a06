"""`twitstack config show`: the effective settings as TOML, each value with its source."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource

from twitstack.core.config import LoadedSettings, Settings
from twitstack.core.url_masking import mask_setting

Path_ = tuple[str, ...]


def _flatten(data: Mapping[str, Any], prefix: Path_ = ()) -> dict[Path_, Any]:
    flat: dict[Path_, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def value_sources(loaded: LoadedSettings, env_file: str | Path | None = ".env") -> dict[Path_, str]:
    """For every leaf the sources set, the highest-priority source that set it."""
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("override", loaded.overrides),
        ("env", EnvSettingsSource(Settings)()),
    ]
    if env_file is not None and Path(env_file).is_file():
        layers.append((f"env file {env_file}", DotEnvSettingsSource(Settings, env_file=env_file)()))
    if loaded.config_path is not None:
        layers.append((f"file {loaded.config_path}", loaded.toml))
    sources: dict[Path_, str] = {}
    for name, data in reversed(layers):
        for path in _flatten(_lower_keys(data)):
            # A source that sets a parent (a whole list or section) owns everything below it.
            sources[path] = name
    return sources


def _lower_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key).lower(): _lower_keys(value) if isinstance(value, Mapping) else value
        for key, value in data.items()
    }


def render_settings(loaded: LoadedSettings, env_file: str | Path | None = ".env") -> str:
    """The effective settings as TOML; secrets masked, each line's source in a comment."""
    dumped = loaded.settings.model_dump(mode="json")
    sources = value_sources(loaded, env_file)
    lines: list[str] = [
        "# Effective twitstack settings. Secrets are masked.",
        f"# config file: {loaded.config_path or '(none)'}",
        "",
    ]
    scalars = {k: v for k, v in dumped.items() if not isinstance(v, dict)}
    lines += _render_table((), scalars, sources)
    for section, body in dumped.items():
        if isinstance(body, dict):
            lines += _render_section((section,), body, sources)
    return "\n".join(lines).rstrip() + "\n"


def _render_section(path: Path_, body: Mapping[str, Any], sources: dict[Path_, str]) -> list[str]:
    lines = ["", f"[{'.'.join(path)}]"]
    simple = {k: v for k, v in body.items() if not _is_table(v)}
    lines += _render_table(path, simple, sources)
    for key, value in body.items():
        if isinstance(value, dict):
            lines += _render_section((*path, key), value, sources)
        elif _is_table(value):
            source = _source_of((*path, key), sources)
            for item in value:
                lines += ["", f"[[{'.'.join((*path, key))}]]  # {source}"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None]
    return lines


def _render_table(path: Path_, values: Mapping[str, Any], sources: dict[Path_, str]) -> list[str]:
    lines = []
    for key, value in values.items():
        source = _source_of((*path, key), sources)
        if value is None:
            lines.append(f"# {key} is unset  # {source}")
        else:
            lines.append(f"{key} = {_toml_value(value)}  # {source}")
    return lines


def _source_of(path: Path_, sources: dict[Path_, str]) -> str:
    for depth in range(len(path), 0, -1):
        found = sources.get(path[:depth])
        if found is not None:
            return found
    return "default"


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }"
    # JSON string escaping is valid TOML basic-string escaping for everything we emit.
    # Any string may be a URL with a password in it (redis_url, endpoints): mask those too.
    return json.dumps(mask_setting(str(value)), ensure_ascii=False)
