"""Local key material of the moderation service: the JWT secret and the approval signing key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from twitstack.core.sections.moderation import ModerationSettings
from twitstack.writes.signing import generate_private_key, private_key_to_base64

JWT_KEY_FILE = "moderation-jwt.key"
APPROVAL_KEY_FILE = "moderation-approval.key"


def _read_or_create(path: Path, make: str) -> tuple[str, bool]:
    """The file's stripped text, creating it (mode 0600, atomically) with `make` if absent."""
    try:
        return path.read_text("utf-8").strip(), False
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(make + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        # link() fails if another process won the race; theirs is then the key.
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text("utf-8").strip(), created


def jwt_secret(settings: ModerationSettings, data_dir: Path) -> bytes:
    """The configured JWT secret, or one generated once into data_dir."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value().encode("utf-8")
    text, _ = _read_or_create(data_dir / JWT_KEY_FILE, secrets.token_hex(32))
    return text.encode("utf-8")


def approval_private_key(settings: ModerationSettings, data_dir: Path) -> tuple[str, bool]:
    """The approval signing key text and whether it was just generated."""
    if settings.approval_private_key is not None:
        return settings.approval_private_key.get_secret_value(), False
    if settings.approval_key_file is not None:
        return settings.approval_key_file.read_text("utf-8").strip(), False
    return _read_or_create(
        data_dir / APPROVAL_KEY_FILE, private_key_to_base64(generate_private_key())
    )
