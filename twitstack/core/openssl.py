"""AES-256-GCM and Ed25519 verification through the libcrypto Python's ssl module loaded.

A writer needs two primitives: opening and sealing tokens (AES-256-GCM, twitstack.core.sealing)
and checking approval signatures (Ed25519, twitstack.writes.signing). The cryptography package
would bring its own statically linked OpenSSL and Rust bindings, 5.3 MiB of an idle writer's
resident memory (`python bench/daemon_lifecycle.py`), for the same OpenSSL calls the process's
libcrypto, mapped already for TLS, makes here through ctypes. It is used when it is mapped in
this process (Linux builds of CPython that link the ssl module dynamically) and is OpenSSL
1.1.1 or later; otherwise, and in processes that also sign or generate keys (moderation, the
key commands), cryptography does the work. Tests compare both on the same inputs.
"""

from __future__ import annotations

import ctypes
import ssl
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["AuthenticationFailed", "Ed25519Verifier", "aes_gcm_open", "aes_gcm_seal", "libcrypto"]

_TAG_BYTES = 16
_KEY_BYTES = 32
_ED25519_BYTES = 32
_SIGNATURE_BYTES = 64
_EVP_CTRL_GCM_SET_IVLEN = 0x9
_EVP_CTRL_GCM_GET_TAG = 0x10
_EVP_CTRL_GCM_SET_TAG = 0x11
_MIN_VERSION = 0x10101000  # 1.1.1: raw Ed25519 keys and one-shot EVP_DigestVerify
# cryptography's AESGCM bounds: a writer's nonces are 12 bytes, and a shorter one is refused
# by both backends alike, not sealed with by one of them.
_MIN_NONCE_BYTES, _MAX_NONCE_BYTES = 8, 128
# Lengths go to OpenSSL as C ints, which ctypes truncates without a word: 2**32 + 5 bytes of
# associated data would authenticate only the first 5.
_MAX_INT = 2**31 - 1


class AuthenticationFailed(Exception):
    """An AES-GCM ciphertext that does not authenticate (altered, wrong key or context)."""


_P = ctypes.c_void_p
_INT = ctypes.c_int
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "OBJ_sn2nid": (_INT, [ctypes.c_char_p]),
    "ERR_clear_error": (None, []),
    "EVP_aes_256_gcm": (_P, []),
    "EVP_CIPHER_CTX_new": (_P, []),
    "EVP_CIPHER_CTX_free": (None, [_P]),
    "EVP_CIPHER_CTX_ctrl": (_INT, [_P, _INT, _INT, _P]),
    "EVP_EncryptInit_ex": (_INT, [_P, _P, _P, ctypes.c_char_p, ctypes.c_char_p]),
    "EVP_EncryptUpdate": (_INT, [_P, _P, ctypes.POINTER(_INT), ctypes.c_char_p, _INT]),
    "EVP_EncryptFinal_ex": (_INT, [_P, _P, ctypes.POINTER(_INT)]),
    "EVP_DecryptInit_ex": (_INT, [_P, _P, _P, ctypes.c_char_p, ctypes.c_char_p]),
    "EVP_DecryptUpdate": (_INT, [_P, _P, ctypes.POINTER(_INT), ctypes.c_char_p, _INT]),
    "EVP_DecryptFinal_ex": (_INT, [_P, _P, ctypes.POINTER(_INT)]),
    "EVP_PKEY_new_raw_public_key": (_P, [_INT, _P, ctypes.c_char_p, ctypes.c_size_t]),
    "EVP_PKEY_free": (None, [_P]),
    "EVP_MD_CTX_new": (_P, []),
    "EVP_MD_CTX_free": (None, [_P]),
    "EVP_DigestVerifyInit": (_INT, [_P, _P, _P, _P, _P]),
    "EVP_DigestVerify": (
        _INT,
        [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t],
    ),
}


@cache
def libcrypto() -> ctypes.CDLL | None:
    """The libcrypto the ssl module linked, with the functions above typed; None without one."""
    path = _mapped_libcrypto()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # already mapped: dlopen hands back the same library
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
    except (OSError, AttributeError):
        return None
    if lib.OpenSSL_version_num() < _MIN_VERSION or not _passes_known_answers(lib):
        return None
    return lib


# Known answers: AES-256-GCM with a zero key, nonce and block (the GCM specification's test
# case 14) and RFC 8032's first Ed25519 test. LibreSSL reports itself as OpenSSL 2.0.0 and
# forks number their objects differently: a library that does not give exactly these answers
# through the calls below is not used, rather than trusted to refuse what it should.
_GCM_ANSWER = bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
_RFC8032_KEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
_RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def _passes_known_answers(lib: ctypes.CDLL) -> bool:
    zero, block = bytes(_KEY_BYTES), bytes(16)
    forged = _RFC8032_SIGNATURE[:-1] + bytes([_RFC8032_SIGNATURE[-1] ^ 1])
    try:
        if _seal(lib, zero, zero[:12], block, b"") != _GCM_ANSWER:
            return False
        if _open(lib, zero, zero[:12], _GCM_ANSWER, b"") != block:
            return False
        try:
            _open(lib, zero, zero[:12], _GCM_ANSWER[:-1] + b"\0", b"")
        except AuthenticationFailed:
            pass
        else:
            return False
        pkey = _load_public_key(lib, _RFC8032_KEY)
        try:
            return _verify(lib, pkey, _RFC8032_SIGNATURE, b"") and not _verify(
                lib, pkey, forged, b""
            )
        finally:
            lib.EVP_PKEY_free(pkey)
    except Exception:  # any failure of the checks means: do not use this library
        return False


def _mapped_libcrypto() -> str | None:
    """The path of the libcrypto shared library mapped in this process, if any."""
    assert ssl.OPENSSL_VERSION  # the ssl module (and with it libcrypto) is loaded
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and Path(fields[5]).name.startswith("libcrypto.so"):
            return fields[5]
    return None


def _check(ok: bool, lib: ctypes.CDLL, what: str) -> None:
    if not ok:
        lib.ERR_clear_error()
        raise RuntimeError(f"libcrypto: {what} failed")


def _check_aes_gcm(key: bytes, nonce: bytes, *data: bytes) -> None:
    """The refusals both backends share (cryptography's AESGCM would also take 128/192-bit keys)."""
    if len(key) != _KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    if not _MIN_NONCE_BYTES <= len(nonce) <= _MAX_NONCE_BYTES:
        raise ValueError(
            f"AES-GCM nonces are {_MIN_NONCE_BYTES} to {_MAX_NONCE_BYTES} bytes, not {len(nonce)}"
        )
    if any(len(part) > _MAX_INT for part in data):
        raise ValueError("AES-GCM input longer than OpenSSL takes in one call")


def aes_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM: ciphertext followed by the 16-byte tag, as cryptography's AESGCM.encrypt."""
    _check_aes_gcm(key, nonce, plaintext, aad)
    lib = libcrypto()
    if lib is None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(key).encrypt(nonce, plaintext, aad)
    return _seal(lib, key, nonce, plaintext, aad)


def _seal(lib: ctypes.CDLL, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    ctx = lib.EVP_CIPHER_CTX_new()
    _check(bool(ctx), lib, "EVP_CIPHER_CTX_new")
    try:
        out = ctypes.create_string_buffer(len(plaintext) + _TAG_BYTES)
        size = _INT(0)
        final = _INT(0)
        _check(
            lib.EVP_EncryptInit_ex(ctx, lib.EVP_aes_256_gcm(), None, None, None) == 1
            and lib.EVP_CIPHER_CTX_ctrl(ctx, _EVP_CTRL_GCM_SET_IVLEN, len(nonce), None) == 1
            and lib.EVP_EncryptInit_ex(ctx, None, None, key, nonce) == 1
            and lib.EVP_EncryptUpdate(ctx, None, ctypes.byref(size), aad, len(aad)) == 1
            and lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(size), plaintext, len(plaintext)) == 1
            and lib.EVP_EncryptFinal_ex(ctx, ctypes.byref(out, size.value), ctypes.byref(final))
            == 1,
            lib,
            "AES-GCM encryption",
        )
        written = size.value + final.value
        tag = ctypes.create_string_buffer(_TAG_BYTES)
        _check(
            lib.EVP_CIPHER_CTX_ctrl(ctx, _EVP_CTRL_GCM_GET_TAG, _TAG_BYTES, tag) == 1,
            lib,
            "reading the GCM tag",
        )
        return out.raw[:written] + tag.raw
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


def aes_gcm_open(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    """The plaintext of `aes_gcm_seal`'s output; AuthenticationFailed when it does not verify."""
    _check_aes_gcm(key, nonce, data, aad)
    lib = libcrypto()
    if lib is None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(key).decrypt(nonce, data, aad)
        except InvalidTag:
            raise AuthenticationFailed from None
    return _open(lib, key, nonce, data, aad)


def _open(lib: ctypes.CDLL, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if len(data) < _TAG_BYTES:
        raise AuthenticationFailed
    ciphertext, tag = data[:-_TAG_BYTES], data[-_TAG_BYTES:]
    ctx = lib.EVP_CIPHER_CTX_new()
    _check(bool(ctx), lib, "EVP_CIPHER_CTX_new")
    try:
        out = ctypes.create_string_buffer(len(ciphertext) + _TAG_BYTES)
        size = _INT(0)
        final = _INT(0)
        _check(
            lib.EVP_DecryptInit_ex(ctx, lib.EVP_aes_256_gcm(), None, None, None) == 1
            and lib.EVP_CIPHER_CTX_ctrl(ctx, _EVP_CTRL_GCM_SET_IVLEN, len(nonce), None) == 1
            and lib.EVP_DecryptInit_ex(ctx, None, None, key, nonce) == 1
            and lib.EVP_DecryptUpdate(ctx, None, ctypes.byref(size), aad, len(aad)) == 1
            and lib.EVP_DecryptUpdate(ctx, out, ctypes.byref(size), ciphertext, len(ciphertext))
            == 1
            and lib.EVP_CIPHER_CTX_ctrl(
                ctx, _EVP_CTRL_GCM_SET_TAG, _TAG_BYTES, ctypes.c_char_p(tag)
            )
            == 1,
            lib,
            "AES-GCM decryption",
        )
        if lib.EVP_DecryptFinal_ex(ctx, ctypes.byref(out, size.value), ctypes.byref(final)) != 1:
            lib.ERR_clear_error()
            raise AuthenticationFailed
        return out.raw[: size.value + final.value]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


def _load_public_key(lib: ctypes.CDLL, public_key: bytes) -> int:
    """An EVP_PKEY (the caller frees it) for a raw Ed25519 public key."""
    # By name: LibreSSL and the BoringSSL family number Ed25519 differently from OpenSSL.
    nid = lib.OBJ_sn2nid(b"ED25519")
    _check(nid != 0, lib, "looking up Ed25519")
    pkey = lib.EVP_PKEY_new_raw_public_key(nid, None, public_key, _ED25519_BYTES)
    _check(bool(pkey), lib, "loading the Ed25519 public key")
    return int(pkey)


def _verify(lib: ctypes.CDLL, pkey: int, signature: bytes, message: bytes) -> bool:
    if len(signature) != _SIGNATURE_BYTES:
        return False
    md = lib.EVP_MD_CTX_new()
    _check(bool(md), lib, "EVP_MD_CTX_new")
    try:
        _check(
            lib.EVP_DigestVerifyInit(md, None, None, None, pkey) == 1,
            lib,
            "EVP_DigestVerifyInit",
        )
        valid = lib.EVP_DigestVerify(md, signature, len(signature), message, len(message))
        if valid != 1:
            lib.ERR_clear_error()  # no stale error left for the ssl module to report
        return bool(valid == 1)
    finally:
        lib.EVP_MD_CTX_free(md)


class Ed25519Verifier:
    """Checks Ed25519 signatures against one public key, given as its raw 32 bytes."""

    def __init__(self, public_key: bytes) -> None:
        self._pkey: int | None = None  # set first: __del__ runs after a failed __init__ too
        self._lib = libcrypto()
        self._fallback: Callable[[bytes, bytes], bool] | None = None
        if len(public_key) != _ED25519_BYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self._raw = bytes(public_key)
        if self._lib is None:
            self._fallback = _cryptography_verifier(public_key)
            return
        self._pkey = _load_public_key(self._lib, public_key)

    # A copy made field by field would share the EVP_PKEY, freed twice (a crash or a hang in
    # malloc, seen): copies and pickles load the key again.
    def __copy__(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._raw)

    def __deepcopy__(self, memo: dict[int, Any]) -> Ed25519Verifier:
        return Ed25519Verifier(self._raw)

    def __reduce__(self) -> tuple[type[Ed25519Verifier], tuple[bytes]]:
        return (Ed25519Verifier, (self._raw,))

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's signature over `message`."""
        if self._fallback is not None:
            return self._fallback(signature, message)
        assert self._lib is not None
        assert self._pkey is not None
        return _verify(self._lib, self._pkey, signature, message)

    def __del__(self) -> None:
        if self._pkey is not None and self._lib is not None:
            self._lib.EVP_PKEY_free(self._pkey)
            self._pkey = None


def _cryptography_verifier(public_key: bytes) -> Callable[[bytes, bytes], bool]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(public_key)

    def verify(signature: bytes, message: bytes) -> bool:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return verify
