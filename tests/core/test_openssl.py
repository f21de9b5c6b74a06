"""twitstack.core.openssl agrees with cryptography, through libcrypto and through its fallback."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twitstack.core import openssl
from twitstack.core.openssl import AuthenticationFailed, Ed25519Verifier, aes_gcm_open, aes_gcm_seal

SIZES = (0, 1, 15, 16, 17, 255, 4096)


@pytest.fixture(params=["libcrypto", "cryptography"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cryptography":
        monkeypatch.setattr(openssl, "libcrypto", lambda: None)
    elif openssl.libcrypto() is None:
        pytest.skip("this Python's ssl module does not use a shared libcrypto")
    return str(request.param)


def test_the_test_machine_uses_libcrypto() -> None:
    # CI's CPython links ssl against the system OpenSSL: the ctypes path is the one tested.
    assert openssl.libcrypto() is not None


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", SIZES)
def test_aes_gcm_matches_cryptography(size: int) -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    plaintext, aad = os.urandom(size), os.urandom(size % 40)
    sealed = aes_gcm_seal(key, nonce, plaintext, aad)
    assert sealed == AESGCM(key).encrypt(nonce, plaintext, aad)
    assert aes_gcm_open(key, nonce, sealed, aad) == plaintext
    assert aes_gcm_open(key, nonce, AESGCM(key).encrypt(nonce, plaintext, aad), aad) == plaintext


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", SIZES)
def test_aes_gcm_refuses_what_cryptography_refuses(size: int) -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    plaintext, aad = os.urandom(size), b"context"
    sealed = aes_gcm_seal(key, nonce, plaintext, aad)
    flipped = [bytes(sealed[:i]) + bytes([sealed[i] ^ 1]) + sealed[i + 1 :] for i in (0, -1)]
    cases = [
        (key, nonce, flipped[0], aad),
        (key, nonce, flipped[1], aad),
        (key, nonce, sealed, aad + b"!"),
        (os.urandom(32), nonce, sealed, aad),
        (key, os.urandom(12), sealed, aad),
        (key, nonce, sealed[:15], aad),
    ]
    for case in cases:
        with pytest.raises(InvalidTag):
            AESGCM(case[0]).decrypt(*case[1:])
        with pytest.raises(AuthenticationFailed):
            aes_gcm_open(*case)


@pytest.mark.usefixtures("backend")
def test_ed25519_verifies_exactly_the_signatures_cryptography_makes() -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    verifier = Ed25519Verifier(raw)
    other = Ed25519Verifier(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    for message in (b"", b"approve", os.urandom(1000)):
        signature = private.sign(message)
        assert verifier.verify(signature, message)
        assert not other.verify(signature, message)
        assert not verifier.verify(signature, message + b"x")
        assert not verifier.verify(bytes([signature[0] ^ 1]) + signature[1:], message)
        assert not verifier.verify(signature[:63], message)
        assert not verifier.verify(b"\0" * 64, message)


def test_a_public_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519Verifier(b"short")


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", [16, 24])
def test_aes_gcm_takes_only_256_bit_keys(size: int) -> None:
    # cryptography's AESGCM takes AES-128 and AES-192 keys: the fallback sealed with them.
    with pytest.raises(ValueError, match="32-byte key"):
        aes_gcm_seal(os.urandom(size), os.urandom(12), b"token", b"context")
    with pytest.raises(ValueError, match="32-byte key"):
        aes_gcm_open(os.urandom(size), os.urandom(12), os.urandom(32), b"context")


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", [0, 1, 7, 129])
def test_aes_gcm_refuses_the_nonce_lengths_cryptography_refuses(size: int) -> None:
    # libcrypto sealed with 1 to 7-byte nonces, and failed 0 or 129 with a RuntimeError.
    key, nonce = os.urandom(32), os.urandom(size)
    with pytest.raises(ValueError, match=r"(?i)nonce"):
        AESGCM(key).encrypt(nonce, b"token", b"context")
    with pytest.raises(ValueError, match="nonces are 8 to 128 bytes"):
        aes_gcm_seal(key, nonce, b"token", b"context")
    with pytest.raises(ValueError, match="nonces are 8 to 128 bytes"):
        aes_gcm_open(key, nonce, os.urandom(32), b"context")


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", [8, 128])
def test_aes_gcm_takes_nonces_of_8_to_128_bytes(size: int) -> None:
    key, nonce = os.urandom(32), os.urandom(size)
    sealed = aes_gcm_seal(key, nonce, b"token", b"context")
    assert sealed == AESGCM(key).encrypt(nonce, b"token", b"context")
    assert aes_gcm_open(key, nonce, sealed, b"context") == b"token"


class _LongBytes(bytes):
    """Bytes claiming 2**32 more than they hold: a length a C int cannot carry."""

    def __len__(self) -> int:
        return super().__len__() + 2**32


@pytest.mark.usefixtures("backend")
def test_lengths_past_a_c_int_are_refused_not_truncated() -> None:
    # ctypes passes len() % 2**32 as the int: this associated data would authenticate as b"ctx".
    key, nonce = os.urandom(32), os.urandom(12)
    with pytest.raises(ValueError, match="longer than"):
        aes_gcm_seal(key, nonce, b"token", _LongBytes(b"ctx"))
    with pytest.raises(ValueError, match="longer than"):
        aes_gcm_open(key, nonce, os.urandom(32), _LongBytes(b"ctx"))


_REAL_CDLL = ctypes.CDLL


class _Library:
    """The real libcrypto, with some functions replaced: another build or fork of it."""

    def __init__(self, path: str, **replaced: Callable[..., Any]) -> None:
        self._real = _REAL_CDLL(path)
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        if isinstance(self._replaced.get(name), property):
            raise AttributeError(name)  # a function this build lacks
        if name in self._replaced:
            return self._replaced[name]
        return getattr(self._real, name)


@pytest.fixture
def library(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Makes libcrypto() find the real library with the given functions replaced."""
    if openssl.libcrypto() is None:
        pytest.skip("this Python's ssl module does not use a shared libcrypto")

    def use(**replaced: Callable[..., Any]) -> None:
        monkeypatch.setattr(ctypes, "CDLL", lambda path: _Library(path, **replaced))
        openssl.libcrypto.cache_clear()

    yield use
    monkeypatch.undo()
    openssl.libcrypto.cache_clear()


def _settable(function: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in function libcrypto() can set restype and argtypes on."""

    def call(*args: Any) -> Any:
        return function(*args)

    return call


def test_a_library_that_accepts_any_signature_is_not_used(library: Callable[..., None]) -> None:
    library(EVP_DigestVerify=_settable(lambda *args: 1))
    assert openssl.libcrypto() is None


def test_a_library_that_opens_a_forged_ciphertext_is_not_used(
    library: Callable[..., None],
) -> None:
    library(EVP_DecryptFinal_ex=_settable(lambda *args: 1))
    assert openssl.libcrypto() is None


def test_a_library_older_than_1_1_1_is_not_used(library: Callable[..., None]) -> None:
    library(OpenSSL_version_num=_settable(lambda: 0x1010007F))
    assert openssl.libcrypto() is None


def test_a_library_without_one_of_the_functions_is_not_used(
    library: Callable[..., None],
) -> None:
    def missing(*args: Any) -> Any:
        raise AttributeError("EVP_PKEY_new_raw_public_key")

    library(EVP_PKEY_new_raw_public_key=property(missing))
    assert openssl.libcrypto() is None


def test_ed25519_is_looked_up_by_name(library: Callable[..., None]) -> None:
    # LibreSSL, BoringSSL and AWS-LC number Ed25519 949, not OpenSSL's 1087: a writer on them
    # failed to load its approval keys instead of working (or falling back).
    real = _REAL_CDLL(str(openssl._mapped_libcrypto()))
    real.EVP_PKEY_new_raw_public_key.restype = ctypes.c_void_p
    real.EVP_PKEY_new_raw_public_key.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]

    def new_raw_public_key(nid: int, engine: Any, key: bytes, size: int) -> Any:
        return real.EVP_PKEY_new_raw_public_key(1087, engine, key, size) if nid == 949 else None

    library(
        OBJ_sn2nid=_settable(lambda name: 949 if name == b"ED25519" else 0),
        EVP_PKEY_new_raw_public_key=_settable(new_raw_public_key),
    )
    assert openssl.libcrypto() is not None
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert Ed25519Verifier(raw).verify(private.sign(b"approve"), b"approve")


_L = 2**252 + 27742317777372353535851937790883648493  # the order of Ed25519's base point
_P25519 = 2**255 - 19
_ORDER_8_Y = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826


def _torsion_encodings() -> list[bytes]:
    """The eight points of order dividing 8, canonical and not (y + p), either sign bit."""
    out = []
    for y in (0, 1, _P25519 - 1, _ORDER_8_Y, _P25519 - _ORDER_8_Y):
        for value in (y, y + _P25519):
            if value < 2**255:
                out += [(value | sign << 255).to_bytes(32, "little") for sign in (0, 1)]
    return out


def _cryptography_verdict(public_key: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def test_ed25519_verdicts_match_cryptography_on_edge_cases() -> None:
    """Small-order and non-canonical keys and R, S at and past the group order: the libcrypto
    path accepts exactly what cryptography accepts (malleable S >= L refused by both)."""
    if openssl.libcrypto() is None:
        pytest.skip("this Python's ssl module does not use a shared libcrypto")
    private = Ed25519PrivateKey.generate()
    good = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    points = [*_torsion_encodings(), good, os.urandom(32)]
    scalars = [0, 1, _L - 1, _L, 2**256 - 1]
    message = b"approve"
    accepted = 0
    for key in points:
        verifier = Ed25519Verifier(key)
        for r in points:
            for s in scalars:
                signature = r + s.to_bytes(32, "little")
                verdict = verifier.verify(signature, message)
                assert verdict == _cryptography_verdict(key, signature, message), (key, signature)
                accepted += verdict
    assert accepted > 0  # the torsion keys do admit forgeries: the comparison covers both ways
    verifier = Ed25519Verifier(good)
    for _ in range(100):
        message = os.urandom(64)
        signature = private.sign(message)
        s = int.from_bytes(signature[32:], "little")
        variants = [signature, signature[:32] + (s + _L).to_bytes(32, "little")]
        flipped = bytearray(signature)
        flipped[os.urandom(1)[0] % 64] ^= 1 << (os.urandom(1)[0] % 8)
        variants.append(bytes(flipped))
        for candidate in variants:
            verdict = verifier.verify(candidate, message)
            assert verdict == _cryptography_verdict(good, candidate, message)
        assert verifier.verify(signature, message)
        assert not verifier.verify(variants[1], message)


@pytest.mark.usefixtures("backend")
def test_aes_gcm_verdicts_match_cryptography_on_random_alterations() -> None:
    for _ in range(200):
        key, nonce = os.urandom(32), os.urandom(12)
        plaintext, aad = os.urandom(os.urandom(1)[0]), os.urandom(os.urandom(1)[0] % 40)
        sealed = aes_gcm_seal(key, nonce, plaintext, aad)
        assert sealed == AESGCM(key).encrypt(nonce, plaintext, aad)
        position = int.from_bytes(os.urandom(2), "big") % len(sealed)
        altered = bytearray(sealed)
        altered[position] ^= 1 << (os.urandom(1)[0] % 8)
        for data in (bytes(altered), sealed[:-1], sealed + b"\0", sealed[:position]):
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(nonce, data, aad)
            with pytest.raises(AuthenticationFailed):
                aes_gcm_open(key, nonce, data, aad)
        assert aes_gcm_open(key, nonce, sealed, aad) == plaintext


_COPIES = """
import copy, gc, pickle, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twitstack.core.openssl import Ed25519Verifier

private = Ed25519PrivateKey.generate()
raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
verifier = Ed25519Verifier(raw)
copies = [copy.copy(verifier), copy.deepcopy(verifier), pickle.loads(pickle.dumps(verifier))]
del verifier
gc.collect()
others = [Ed25519Verifier(raw) for _ in range(50)]
print(all(c.verify(private.sign(b"a"), b"a") for c in copies))
del copies, others
gc.collect()
"""


def test_copies_of_a_verifier_do_not_share_its_key() -> None:
    # In a child: a copy sharing the EVP_PKEY freed it twice, which crashed (SIGSEGV) or spun
    # in malloc; the timeout bounds the second.
    if openssl.libcrypto() is None:
        pytest.skip("this Python's ssl module does not use a shared libcrypto")
    done = subprocess.run(
        [sys.executable, "-c", _COPIES], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr[-2000:]


def test_a_library_that_refuses_a_genuine_ciphertext_is_not_used(
    library: Callable[..., None],
) -> None:
    # Its known-answer check raised AuthenticationFailed out of libcrypto() at first use.
    library(EVP_DecryptFinal_ex=_settable(lambda *args: 0))
    assert openssl.libcrypto() is None
