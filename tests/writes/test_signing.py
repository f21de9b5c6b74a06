"""Ed25519 approvals: valid signatures verify, any tampering or unknown key does not."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from twitstack.writes.errors import ApprovalError, KeyFormatError
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.signing import (
    ApprovalFailure,
    ApprovalSigner,
    ApprovalVerifier,
    generate_key_pair,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_base64,
    public_key_to_pem,
)

REQUEST = WriteRequest(action=WriteAction.TWEET, payload={"text": "ship it"}, id="req-7")
LATER = datetime(2030, 1, 1, tzinfo=UTC)
SCHEDULED = replace(REQUEST, not_before=LATER, expires_at=LATER + timedelta(days=1))


@pytest.fixture
def signer() -> ApprovalSigner:
    """A signer with a fresh key."""
    return ApprovalSigner(generate_private_key())


def test_signed_request_verifies(signer: ApprovalSigner) -> None:
    """An approval made by a trusted key verifies and names that key."""
    approved = signer.approve(REQUEST, approver="mod@example.org")
    verifier = ApprovalVerifier([signer.public_key])
    check = verifier.check(approved)
    assert check.ok
    assert check.key_id == signer.key_id
    assert approved.moderation is ModerationStatus.APPROVED
    verifier.verify(approved)


def test_approval_survives_the_wire(signer: ApprovalSigner) -> None:
    """to_dict -> from_dict keeps the signature valid (time is signed in its wire form)."""
    approved = signer.approve(
        REQUEST, approver="m", approved_at=datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    )
    again = WriteRequest.from_dict(approved.to_dict())
    assert ApprovalVerifier([signer.public_key]).check(again).ok


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, payload={"text": "ship it!"}),
        lambda r: replace(r, account="other"),
        lambda r: replace(r, revision=r.revision + 1),
        lambda r: replace(r, id="req-8"),
        lambda r: replace(r, action=WriteAction.DM),
        lambda r: replace(r, approval=replace(r.approval, approver="mallory")),
        lambda r: replace(
            r, approval=replace(r.approval, approved_at=r.approval.approved_at + timedelta(1))
        ),
        lambda r: replace(r, not_before=None),
        lambda r: replace(r, not_before=r.not_before - timedelta(hours=6)),
        lambda r: replace(r, expires_at=None),
        lambda r: replace(r, approval=replace(r.approval, nonce="0" * 32)),
    ],
    ids=[
        "text", "account", "revision", "id", "action", "approver", "approved_at",
        "not_before_stripped", "not_before_earlier", "expires_at_stripped", "nonce",
    ],
)  # fmt: skip
def test_tampering_breaks_the_signature(signer: ApprovalSigner, tamper: object) -> None:
    """Changing any signed part after approval makes verification fail."""
    approved = signer.approve(SCHEDULED, approver="mod")
    tampered = tamper(approved)  # type: ignore[operator]
    check = ApprovalVerifier([signer.public_key]).check(tampered)
    assert not check.ok
    assert check.reason is ApprovalFailure.BAD_SIGNATURE
    with pytest.raises(ApprovalError) as caught:
        ApprovalVerifier([signer.public_key]).verify(tampered)
    assert caught.value.reason == "bad_signature"


def test_unsigned_and_forged_approvals_fail(signer: ApprovalSigner) -> None:
    """No approval, a stranger's key and a garbled signature each fail with their reason."""
    verifier = ApprovalVerifier([signer.public_key])
    forged = ApprovalSigner(generate_private_key()).approve(REQUEST, approver="mod")
    approved = signer.approve(REQUEST, approver="mod")
    assert approved.approval is not None
    garbled = replace(approved, approval=replace(approved.approval, signature="AAAA"))
    assert verifier.check(replace(REQUEST, moderation=ModerationStatus.APPROVED)).reason is (
        ApprovalFailure.MISSING
    )
    assert verifier.check(forged).reason is ApprovalFailure.UNKNOWN_KEY
    assert verifier.check(garbled).reason is ApprovalFailure.MALFORMED


def test_old_format_approvals_are_refused_with_their_own_reason(signer: ApprovalSigner) -> None:
    """A v1 approval (no nonce) is refused as old_format, whatever its signature says."""
    approved = signer.approve(REQUEST, approver="mod")
    assert approved.approval is not None
    old = replace(approved, approval=replace(approved.approval, nonce=None))
    assert "nonce" not in old.to_dict()["approval"]
    check = ApprovalVerifier([signer.public_key]).check(WriteRequest.from_dict(old.to_dict()))
    assert check.reason is ApprovalFailure.OLD_FORMAT


def test_each_approval_gets_its_own_nonce(signer: ApprovalSigner) -> None:
    """Two approvals of the same revision differ in their nonce (each is spent on its own)."""
    first = signer.sign(REQUEST, approver="mod")
    second = signer.sign(REQUEST, approver="mod", approved_at=first.approved_at)
    assert first.nonce
    assert second.nonce
    assert first.nonce != second.nonce


def test_key_rotation_accepts_old_and_new_keys() -> None:
    """A verifier holding both keys accepts both; dropping the old key refuses its approvals."""
    old, new = ApprovalSigner(generate_private_key()), ApprovalSigner(generate_private_key())
    by_old = old.approve(REQUEST, approver="mod")
    by_new = new.approve(REQUEST, approver="mod")
    both = ApprovalVerifier([old.public_key, new.public_key])
    assert both.check(by_old).ok
    assert both.check(by_new).ok
    only_new = ApprovalVerifier([new.public_key])
    assert only_new.check(by_new).ok
    assert only_new.check(by_old).reason is ApprovalFailure.UNKNOWN_KEY
    assert both.key_ids == {old.key_id, new.key_id}


def test_max_age_refuses_stale_approvals(signer: ApprovalSigner) -> None:
    """With max_age_s, old (or future-dated) approvals are refused as stale."""
    approved_at = datetime(2025, 1, 1, tzinfo=UTC)
    approved = signer.approve(REQUEST, approver="mod", approved_at=approved_at)
    verifier = ApprovalVerifier([signer.public_key], max_age_s=3600)
    assert verifier.check(approved, now=approved_at + timedelta(minutes=59)).ok
    stale = verifier.check(approved, now=approved_at + timedelta(hours=2))
    assert stale.reason is ApprovalFailure.STALE
    early = verifier.check(approved, now=approved_at - timedelta(hours=1))
    assert early.reason is ApprovalFailure.STALE


def test_keys_load_from_pem_and_base64() -> None:
    """Both encodings of both halves load to the same key."""
    private_b64, public_b64 = generate_key_pair()
    key = load_private_key(private_b64)
    assert public_key_to_base64(key.public_key()) == public_b64
    pem_signer = ApprovalSigner(private_key_to_pem(key))
    approved = pem_signer.approve(REQUEST, approver="mod")
    assert ApprovalVerifier([public_b64]).check(approved).ok
    assert ApprovalVerifier([public_key_to_pem(load_public_key(public_b64))]).check(approved).ok


@pytest.mark.parametrize("text", ["", "not base64!", "QUJD", "-----BEGIN PUBLIC KEY-----\nxx"])
def test_bad_keys_raise_key_format_error(text: str) -> None:
    """Malformed key text raises KeyFormatError, never a library exception."""
    with pytest.raises(KeyFormatError):
        load_public_key(text)
    with pytest.raises(KeyFormatError):
        load_private_key(text)


def _other_pems() -> list[str]:
    """Public keys of other kinds, and Ed25519 PEM with extra text: cryptography decides."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ed_pem = public_key_to_pem(generate_private_key().public_key())
    # The last base64 character before '=' carries 2 unused bits: set, it decodes to the same
    # key in Python but is refused by cryptography.
    body = ed_pem.splitlines()[1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(body[-2]) | 1]
    loose_pem = ed_pem.replace(body, body[:-2] + last + "=")
    return [ec_pem, ed_pem + "trailing", ed_pem.replace("PUBLIC KEY", "PRIVATE KEY"), loose_pem]


@pytest.mark.parametrize(
    "make",
    [
        lambda: generate_key_pair()[1],
        lambda: "  " + generate_key_pair()[1] + "\n",
        lambda: generate_key_pair()[1].replace("+", "-").replace("/", "_").rstrip("="),
        lambda: public_key_to_pem(generate_private_key().public_key()),
        lambda: generate_private_key().public_key(),
        *[(lambda pem=pem: pem) for pem in ["", "not base64!", "QUJD", "-----BEGIN x\nxx"]],
        *[(lambda pem=pem: pem) for pem in _other_pems()],
    ],
)
def test_the_verifier_reads_keys_as_load_public_key_does(make: object) -> None:
    """raw_public_key (the writer's way, without cryptography) gives the bytes and the errors
    of load_public_key for every input: the same keys trusted, the same keys refused."""
    from twitstack.writes.signing import key_id, raw_public_key

    assert callable(make)
    text = make()
    try:
        expected: bytes | str = key_id(load_public_key(text))
    except KeyFormatError as exc:
        expected = str(exc)
    try:
        got: bytes | str = hashlib.sha256(raw_public_key(text)).hexdigest()[:16]
    except KeyFormatError as exc:
        got = str(exc)
    assert got == expected


def test_a_verifier_refuses_a_key_that_is_not_ed25519() -> None:
    with pytest.raises(KeyFormatError, match="expected an Ed25519 public key, found"):
        ApprovalVerifier([_other_pems()[0]])


_P25519 = 2**255 - 19
_ORDER_8_Y = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826


def _small_order_keys() -> list[bytes]:
    """Every encoding of the eight points of order dividing 8: y, y + p where it fits in 255
    bits, each with the sign bit clear and set."""
    keys = []
    for y in (0, 1, _P25519 - 1, _ORDER_8_Y, _P25519 - _ORDER_8_Y):
        for value in (y, y + _P25519):
            if value < 2**255:
                keys += [(value | sign << 255).to_bytes(32, "little") for sign in (0, 1)]
    return keys


def test_an_identity_key_verifies_a_signature_nobody_made() -> None:
    """Why small-order keys are refused: R the identity and S zero verify for any message."""
    from twitstack.core.openssl import Ed25519Verifier

    identity = (1).to_bytes(32, "little")
    assert Ed25519Verifier(identity).verify(identity + bytes(32), b"any approval")


@pytest.mark.parametrize("raw", _small_order_keys())
def test_small_order_public_keys_are_refused(raw: bytes) -> None:
    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + base64.b64encode(bytes.fromhex("302a300506032b6570032100") + raw).decode()
        + "\n-----END PUBLIC KEY-----\n"
    )
    for text in (base64.b64encode(raw).decode(), pem):
        with pytest.raises(KeyFormatError, match="small order"):
            ApprovalVerifier([text])
        with pytest.raises(KeyFormatError, match="small order"):
            load_public_key(text)
