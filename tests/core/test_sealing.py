"""The sealing key ring: AES-GCM blobs bound to their context, rotation, key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from twitstack.core.sealing import (
    KeyRingError,
    SealError,
    SealingKeyRing,
    generate_key_ring,
    is_sealed,
    load_or_create_key_file,
)


def ring(text: str) -> SealingKeyRing:
    return SealingKeyRing.parse(text, source="test")


def test_round_trip_under_the_newest_key() -> None:
    """A sealed value opens with the same context, and names the newest key."""
    keys = ring(f"{generate_key_ring('new')},{generate_key_ring('old')}")
    blob = keys.seal(b"secret-token", context="k|a")
    assert blob.startswith("ts1.new.")
    assert is_sealed(blob)
    assert b"secret-token" not in blob.encode()
    assert keys.unseal(blob, context="k|a") == b"secret-token"


def test_other_context_is_refused() -> None:
    """A blob moved to another key or account does not open (associated data)."""
    keys = ring(generate_key_ring("k1"))
    blob = keys.seal(b"secret-token", context="twitstack:secret:oauth2:a|a")
    with pytest.raises(SealError, match="does not authenticate"):
        keys.unseal(blob, context="twitstack:secret:oauth2:b|b")


@pytest.mark.parametrize("position", [8, 20, -1])
def test_any_altered_character_is_refused(position: int) -> None:
    """Flipping one character anywhere in the data is detected."""
    keys = ring(generate_key_ring("k1"))
    blob = keys.seal(b"secret-token", context="c")
    flipped = "A" if blob[position] != "A" else "B"
    altered = (
        blob[:position] + flipped + blob[position + 1 :] if position != -1 else blob[:-1] + flipped
    )
    with pytest.raises(SealError):
        keys.unseal(altered, context="c")


def test_rotation_old_keys_open_newest_seals() -> None:
    """After rotation the old blob opens and asks to be resealed; without the old key it fails."""
    old = generate_key_ring("k1")
    blob = ring(old).seal(b"t", context="c")
    rotated = ring(f"{generate_key_ring('k2')},{old}")
    assert rotated.unseal(blob, context="c") == b"t"
    assert rotated.needs_reseal(blob)
    assert not rotated.needs_reseal(rotated.seal(b"t", context="c"))
    with pytest.raises(SealError, match="'k1', which the key ring does not hold"):
        ring(generate_key_ring("k2")).unseal(blob, context="c")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "found none"),
        ("k1", "expected 'id:base64key'"),
        ("bad id!:AAAA", "expected 'id:base64key'"),
        ("k1:AAAA", "expected 32 bytes in base64, found 3"),
        ("k1:not base64 at all", "expected 32 bytes"),
    ],
)
def test_malformed_rings_say_what_is_wrong(text: str, message: str) -> None:
    """Each mistake is one clear line, which never repeats the key material."""
    with pytest.raises(KeyRingError, match=message) as caught:
        ring(text)
    assert "AAAA" not in str(caught.value)


def test_duplicate_key_ids_are_refused() -> None:
    with pytest.raises(KeyRingError, match="twice"):
        ring(f"{generate_key_ring('k1')},{generate_key_ring('k1')}")


def test_key_file_is_created_0600_and_never_replaced(tmp_path: Path) -> None:
    """The dev key file is made private once; later loads return the same ring."""
    path = tmp_path / "state" / "writer-sealing.keys"
    first, created = load_or_create_key_file(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_key_file(path)
    assert not created_again
    assert again == first


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "writer-sealing.keys"
    path.write_text(generate_key_ring() + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        load_or_create_key_file(path)
