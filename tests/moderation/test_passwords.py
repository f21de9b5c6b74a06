"""Password policy and argon2id hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from twitstack.moderation.passwords import (
    PasswordPolicyError,
    PasswordService,
    check_policy,
    common_passwords,
)

pytestmark = pytest.mark.anyio


def test_rejects_short_passwords() -> None:
    """Seven characters are too few; the message says how many are needed."""
    with pytest.raises(PasswordPolicyError, match="at least 8"):
        check_policy("abcdefg")


def test_accepts_long_passwords_without_composition_rules() -> None:
    """A 64-character lowercase phrase is fine: no composition rules."""
    check_policy("correct horse battery staple and then some more words to be long"[:64])


def test_rejects_common_passwords_case_insensitively() -> None:
    """Passwords from the bundled list are refused whatever their case."""
    assert len(common_passwords()) > 3000
    for word in ("password", "PassWord1", "12345678", "iloveyou"):
        with pytest.raises(PasswordPolicyError, match="common"):
            check_policy(word)


def test_rejects_password_equal_to_username() -> None:
    with pytest.raises(PasswordPolicyError, match="username"):
        check_policy("moderator7", username="Moderator7")


async def test_default_hash_is_argon2id_with_recommended_parameters() -> None:
    """Default parameters are argon2id m=64 MiB, t=3, p=4."""
    service = PasswordService()
    hashed = await service.hash("a long enough passphrase")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert (await service.verify(hashed, "a long enough passphrase")).ok
    assert not (await service.verify(hashed, "wrong passphrase!")).ok
    assert service.verifications == 2


async def test_rehash_when_parameters_change() -> None:
    """A hash made with older parameters is replaced on the next successful check."""
    old = PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    new = PasswordService(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    stored = await old.hash("a long enough passphrase")
    result = await new.verify(stored, "a long enough passphrase")
    assert result.ok
    assert result.new_hash is not None
    assert "m=2048,t=2,p=1" in result.new_hash
    again = await new.verify(result.new_hash, "a long enough passphrase")
    assert again.ok
    assert again.new_hash is None


async def test_unknown_user_never_verifies(fast_passwords: PasswordService) -> None:
    """A missing hash still runs a check (constant work) and always fails."""
    result = await fast_passwords.verify(None, "twitstack-dummy-password")
    assert not result.ok
    assert fast_passwords.verifications == 1
