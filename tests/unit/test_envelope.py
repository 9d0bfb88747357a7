"""Envelopes, receipts and the bytes they sign: bytes in, decisions out (no sockets)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.codec import encode_payload
from gateway.envelope import (
    Freshness,
    OpenedEnvelope,
    issue_receipt,
    new_message_id,
    open_envelope,
    parse_header,
    reseal_envelope,
    seal_envelope,
    verify_receipt,
)
from gateway.errors import (
    CertificateRejected,
    ConfigInvalid,
    EnvelopeMalformed,
    EnvelopeStale,
    GatewayError,
    PayloadDigestMismatch,
    RecordInvalid,
    SenderMismatch,
    SignatureInvalid,
    WrongReceiver,
)
from gateway.pki import (
    PkiLayout,
    SigningCertificateVerifier,
    init_pki,
    issue_signing_certificate,
    key_id,
    load_certificate,
    load_private_key,
)
from gateway.records import RecordType, parse_record
from gateway.signing import (
    ENVELOPE_LABEL,
    RECEIPT_LABEL,
    Ed25519Suite,
    Signer,
    SigningKey,
    signing_input,
    suite_named,
)

RecordData = Callable[..., dict[str, Any]]

TONGLIANG, SUINING = "500151", "510900"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=250_000)
# Certificates made by the fixtures are valid from just before NOW, however late the
# fixture runs: the module's tests check them at NOW.
CERTS_FROM = NOW - dt.timedelta(minutes=1)
AGREEMENT = "CY-AGR-2024-001"
FRESHNESS = Freshness()  # 15 minutes old, 5 minutes ahead


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    return init_pki(tmp_path_factory.mktemp("pki"), [TONGLIANG, SUINING], now=CERTS_FROM)


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    # Same CA name and bureaus, different keys: only the signature chain tells them apart.
    return init_pki(tmp_path_factory.mktemp("foreign-pki"), [TONGLIANG, SUINING], now=CERTS_FROM)


@pytest.fixture(scope="module")
def verifier(pki: PkiLayout) -> SigningCertificateVerifier:
    return SigningCertificateVerifier([load_certificate(pki.ca_cert)])


def make_signer(layout: PkiLayout, bureau: str, *, claims: str | None = None) -> Signer:
    """``bureau``'s key and certificate, optionally presented as bureau ``claims``."""
    paths = layout.bureau(bureau)
    cert = load_certificate(paths.signing_cert)
    return Signer(
        bureau=claims or bureau,
        suite=Ed25519Suite(),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )


@pytest.fixture(scope="module")
def tongliang(pki: PkiLayout) -> Signer:
    return make_signer(pki, TONGLIANG)


@pytest.fixture(scope="module")
def suining(pki: PkiLayout) -> Signer:
    return make_signer(pki, SUINING)


@pytest.fixture
def payload(record_data: RecordData) -> bytes:
    return encode_payload(parse_record(record_data("consumer_complaint")))


def seal(
    signer: Signer,
    payload: bytes,
    *,
    record_type: RecordType = RecordType.CONSUMER_COMPLAINT,
    created_at: dt.datetime = NOW,
    message_id: str = "6f1c1a52-3b0e-4c57-9d4e-0b6a3f3c2a10",
    receiver: str = SUINING,
    correlation_id: str = "",
) -> epb.Envelope:
    return seal_envelope(
        signer,
        message_id=message_id,
        receiver=receiver,
        record_type=record_type,
        agreement_id=AGREEMENT,
        correlation_id=correlation_id,
        payload=payload,
        created_at=created_at,
    )


def open_(
    envelope: epb.Envelope,
    verifier: SigningCertificateVerifier,
    *,
    receiver: str = SUINING,
    tls_peer: str | None = TONGLIANG,
    now: dt.datetime = NOW,
) -> OpenedEnvelope:
    return open_envelope(
        envelope,
        receiver=receiver,
        tls_peer=tls_peer,
        verifier=verifier,
        now=now,
        freshness=FRESHNESS,
    )


# --------------------------------------------------------------------------- signing


def test_signing_input_is_label_then_part_digests() -> None:
    header, payload = b"header bytes", b"payload bytes"
    expected = (
        b"chuanyu.exchange.v1.Envelope\n"
        + hashlib.sha256(header).digest()
        + hashlib.sha256(payload).digest()
    )
    assert signing_input(ENVELOPE_LABEL, header, payload) == expected
    assert signing_input(RECEIPT_LABEL, b"body") == (
        b"chuanyu.exchange.v1.Receipt\n" + hashlib.sha256(b"body").digest()
    )
    # Digests first: moving bytes between the parts changes the input.
    assert signing_input(ENVELOPE_LABEL, b"ab", b"c") != signing_input(ENVELOPE_LABEL, b"a", b"bc")


def _raw_public_key(signer: Signer) -> Ed25519PublicKey:
    """The signer's public key rebuilt from its 32 raw bytes, as a third party would."""
    private = signer.private_key
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert len(raw) == 32
    return Ed25519PublicKey.from_public_bytes(raw)


def test_envelope_signature_verifies_with_the_raw_public_key(
    tongliang: Signer, payload: bytes
) -> None:
    envelope = seal(tongliang, payload)
    assert len(envelope.signature.value) == 64
    tbs = ENVELOPE_LABEL + hashlib.sha256(envelope.header).digest()
    tbs += hashlib.sha256(envelope.payload).digest()
    _raw_public_key(tongliang).verify(envelope.signature.value, tbs)
    # And with the key of the certificate that travels in the envelope.
    from cryptography import x509

    cert_key = x509.load_der_x509_certificate(envelope.signer_certificate).public_key()
    assert isinstance(cert_key, Ed25519PublicKey)
    cert_key.verify(envelope.signature.value, tbs)


def test_receipt_signature_verifies_with_the_raw_public_key(suining: Signer) -> None:
    receipt = issue_receipt(
        suining,
        message_id=new_message_id(),
        sender=TONGLIANG,
        header_sha256=bytes(32),
        payload_sha256=bytes(32),
        received_at=NOW,
    )
    tbs = RECEIPT_LABEL + hashlib.sha256(receipt.body).digest()
    _raw_public_key(suining).verify(receipt.signature.value, tbs)


def test_suite_lookup() -> None:
    assert suite_named("ed25519").name == "ed25519"
    with pytest.raises(SignatureInvalid) as caught:
        suite_named("sm2")
    assert caught.value.reason == "SIGNATURE_SUITE_UNSUPPORTED"


def test_ed25519_suite_refuses_other_key_types() -> None:
    suite = Ed25519Suite()
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigInvalid):
        suite.check_private_key(ecdsa)
    with pytest.raises(ConfigInvalid):
        suite.sign(ecdsa, b"data")
    with pytest.raises(SignatureInvalid) as caught:
        suite.verify(ecdsa.public_key(), bytes(64), b"data")
    assert caught.value.reason == "SIGNATURE_SUITE_KEY_MISMATCH"
    key = Ed25519PrivateKey.generate()
    suite.verify(key.public_key(), suite.sign(key, b"data"), b"data")
    with pytest.raises(SignatureInvalid) as caught:
        suite.verify(key.public_key(), suite.sign(key, b"data"), b"date")
    assert caught.value.reason == "SIGNATURE_INVALID"


# --------------------------------------------------------------------------- seal and open


def test_new_message_ids_are_lower_case_uuids() -> None:
    first, second = new_message_id(), new_message_id()
    assert first != second
    assert first == first.lower()
    assert len(first) == 36


@pytest.mark.parametrize("tls_peer", [TONGLIANG, None])
def test_seal_then_open(
    tongliang: Signer,
    verifier: SigningCertificateVerifier,
    record_data: RecordData,
    tls_peer: str | None,
) -> None:
    record = parse_record(record_data("consumer_complaint"))
    payload = encode_payload(record)
    message_id = new_message_id()
    envelope = seal(tongliang, payload, message_id=message_id, correlation_id="")
    opened = open_(envelope, verifier, tls_peer=tls_peer)
    assert opened.record == record
    assert opened.record_type is RecordType.CONSUMER_COMPLAINT
    assert opened.signer.bureau == TONGLIANG
    assert opened.signer.key_id == tongliang.key_id
    assert opened.created_at == NOW
    assert opened.header_sha256 == hashlib.sha256(envelope.header).digest()
    assert opened.payload_sha256 == hashlib.sha256(payload).digest()
    header = opened.header
    assert (header.message_id, header.sender, header.receiver) == (message_id, TONGLIANG, SUINING)
    assert header.agreement_id == AGREEMENT
    assert header.payload_sha256 == hashlib.sha256(payload).digest()
    assert (header.suite, header.key_id) == ("ed25519", tongliang.key_id)
    assert (envelope.signature.suite, envelope.signature.key_id) == (header.suite, header.key_id)
    assert envelope.payload == payload  # carried as the exact bytes signed


def test_feedback_keeps_its_correlation_id(
    suining: Signer, verifier: SigningCertificateVerifier, record_data: RecordData
) -> None:
    correlation = new_message_id()
    envelope = seal(
        suining,
        encode_payload(parse_record(record_data("feedback"))),
        record_type=RecordType.FEEDBACK,
        receiver=TONGLIANG,
        correlation_id=correlation,
    )
    opened = open_(envelope, verifier, receiver=TONGLIANG, tls_peer=SUINING)
    assert opened.header.correlation_id == correlation
    assert opened.record_type is RecordType.FEEDBACK


@pytest.mark.parametrize(
    "created_at",
    [NOW - FRESHNESS.max_age, NOW + FRESHNESS.max_skew, NOW - dt.timedelta(minutes=14)],
    ids=["oldest", "furthest-ahead", "recent"],
)
def test_freshness_window_edges_are_accepted(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes, created_at: dt.datetime
) -> None:
    assert open_(seal(tongliang, payload, created_at=created_at), verifier).created_at == created_at


# Each failure: how to break a good envelope (or the call), the error class and reason.
Breaker = Callable[[epb.Envelope], epb.Envelope]


def _flip_last_payload_byte(envelope: epb.Envelope) -> epb.Envelope:
    envelope.payload = envelope.payload[:-1] + bytes([envelope.payload[-1] ^ 0x01])
    return envelope


def _replace_in_header(old: bytes, new: bytes) -> Breaker:
    def apply(envelope: epb.Envelope) -> epb.Envelope:
        assert envelope.header.count(old) == 1
        envelope.header = envelope.header.replace(old, new)
        return envelope

    return apply


def _set_attr(path: str, value: Any) -> Breaker:
    def apply(envelope: epb.Envelope) -> epb.Envelope:
        *parents, last = path.split(".")
        target: Any = envelope
        for part in parents:
            target = getattr(target, part)
        setattr(target, last, value)
        return envelope

    return apply


def _resign_header(mutate: Callable[[epb.EnvelopeHeader], None]) -> Callable[[Signer], Breaker]:
    """Change a header field and sign again, so only the field check can refuse it."""

    def with_signer(signer: Signer) -> Breaker:
        def apply(envelope: epb.Envelope) -> epb.Envelope:
            header = parse_header(envelope.header)
            mutate(header)
            envelope.header = header.SerializeToString(deterministic=True)
            envelope.signature.value = signer.sign(
                ENVELOPE_LABEL, envelope.header, envelope.payload
            )
            return envelope

        return apply

    return with_signer


ENVELOPE_FAILURES: list[tuple[str, Breaker, type[GatewayError], str]] = [
    ("payload-byte", _flip_last_payload_byte, PayloadDigestMismatch, "PAYLOAD_DIGEST_MISMATCH"),
    ("payload-swapped", _set_attr("payload", b"\x12\x00"), PayloadDigestMismatch,
     "PAYLOAD_DIGEST_MISMATCH"),
    ("header-agreement-byte", _replace_in_header(AGREEMENT.encode(), b"CY-AGR-2024-002"),
     SignatureInvalid, "SIGNATURE_INVALID"),
    ("header-message-id-byte", _replace_in_header(b"6f1c1a52", b"6f1c1a53"), SignatureInvalid,
     "SIGNATURE_INVALID"),
    ("signature-byte", _set_attr("signature.value", bytes(64)), SignatureInvalid,
     "SIGNATURE_INVALID"),
    ("signature-empty", _set_attr("signature.value", b""), SignatureInvalid, "SIGNATURE_INVALID"),
    ("signature-key-id", _set_attr("signature.key_id", "0" * 64), SignatureInvalid,
     "SIGNATURE_HEADER_MISMATCH"),
    ("signature-suite", _set_attr("signature.suite", "sm2"), SignatureInvalid,
     "SIGNATURE_HEADER_MISMATCH"),
    ("header-garbage", _set_attr("header", b"\xff\xff\xff"), EnvelopeMalformed,
     "ENVELOPE_MALFORMED"),
    ("header-empty", _set_attr("header", b""), EnvelopeMalformed, "ENVELOPE_MALFORMED"),
    ("certificate-garbage", _set_attr("signer_certificate", b"\x30\x00"), CertificateRejected,
     "CERTIFICATE_MALFORMED"),
    ("certificate-missing", _set_attr("signer_certificate", b""), CertificateRejected,
     "CERTIFICATE_MALFORMED"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("breaker", "error", "reason"),
    [case[1:] for case in ENVELOPE_FAILURES],
    ids=[case[0] for case in ENVELOPE_FAILURES],
)
def test_tampered_envelope_is_refused(
    tongliang: Signer,
    verifier: SigningCertificateVerifier,
    payload: bytes,
    breaker: Breaker,
    error: type[GatewayError],
    reason: str,
) -> None:
    envelope = breaker(seal(tongliang, payload))
    with pytest.raises(error) as caught:
        open_(envelope, verifier)
    assert type(caught.value) is error
    assert caught.value.reason == reason


def test_the_header_is_tampered_inside_a_string_so_it_still_parses(
    tongliang: Signer, payload: bytes
) -> None:
    envelope = _replace_in_header(AGREEMENT.encode(), b"CY-AGR-2024-002")(seal(tongliang, payload))
    assert parse_header(envelope.header).agreement_id == "CY-AGR-2024-002"


HEADER_FAILURES: list[tuple[str, Callable[[epb.EnvelopeHeader], None], str]] = [
    ("message-id-not-uuid", lambda h: setattr(h, "message_id", "msg-1"), "message_id"),
    ("message-id-upper-case", lambda h: setattr(h, "message_id", h.message_id.upper()),
     "message_id"),
    ("sender-not-a-bureau", lambda h: setattr(h, "sender", "tongliang"), "sender"),
    ("receiver-not-a-bureau", lambda h: setattr(h, "receiver", "99"), "receiver"),
    ("record-type-unspecified", lambda h: setattr(h, "record_type", 0), "unspecified"),
    ("record-type-unknown", lambda h: setattr(h, "record_type", 42), "unknown record type"),
    ("no-agreement", lambda h: setattr(h, "agreement_id", ""), "agreement_id"),
    ("no-created-at", lambda h: h.ClearField("created_at"), "created_at"),
    ("short-digest", lambda h: setattr(h, "payload_sha256", bytes(31)), "payload_sha256"),
    ("no-suite", lambda h: setattr(h, "suite", ""), "suite"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "match"),
    [case[1:] for case in HEADER_FAILURES],
    ids=[case[0] for case in HEADER_FAILURES],
)
def test_signed_header_with_a_bad_field_is_malformed(
    tongliang: Signer,
    verifier: SigningCertificateVerifier,
    payload: bytes,
    mutate: Callable[[epb.EnvelopeHeader], None],
    match: str,
) -> None:
    envelope = _resign_header(mutate)(tongliang)(seal(tongliang, payload))
    with pytest.raises(EnvelopeMalformed, match=match):
        open_(envelope, verifier, tls_peer=None)


def test_signed_by_the_other_bureau_claiming_to_be_the_sender(
    pki: PkiLayout, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    # Suining's key and certificate, but the header says Tongliang sent it.
    impostor = make_signer(pki, SUINING, claims=TONGLIANG)
    envelope = seal(impostor, payload)
    assert parse_header(envelope.header).sender == TONGLIANG
    for tls_peer in (TONGLIANG, None):
        with pytest.raises(SenderMismatch) as caught:
            open_(envelope, verifier, tls_peer=tls_peer)
        assert caught.value.reason == "SIGNER_NOT_SENDER"


def test_certificate_from_a_foreign_ca(
    foreign_pki: PkiLayout, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    envelope = seal(make_signer(foreign_pki, TONGLIANG), payload)
    with pytest.raises(CertificateRejected) as caught:
        open_(envelope, verifier)
    assert caught.value.reason == "CERTIFICATE_UNTRUSTED"


def test_key_id_that_is_not_the_certificates(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    envelope = seal(replace(tongliang, key_id="ab" * 32), payload)
    with pytest.raises(SignatureInvalid) as caught:
        open_(envelope, verifier)
    assert caught.value.reason == "KEY_ID_MISMATCH"


def test_signed_with_a_key_that_does_not_match_the_certificate(
    pki: PkiLayout, tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    other_key = load_private_key(pki.bureau(SUINING).signing_key)
    envelope = seal(replace(tongliang, private_key=other_key), payload)
    with pytest.raises(SignatureInvalid) as caught:
        open_(envelope, verifier)
    assert caught.value.reason == "SIGNATURE_INVALID"


class _RenamedSuite:
    """Ed25519 under another name: the receiver must refuse a suite it does not support."""

    name = "sm2"

    def check_private_key(self, key: SigningKey) -> None:
        pass

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        assert isinstance(key, Ed25519PrivateKey)
        return key.sign(data)

    def verify(self, key: Any, signature: bytes, data: bytes) -> None:
        raise AssertionError("not used")


def test_unsupported_suite(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    envelope = seal(replace(tongliang, suite=_RenamedSuite()), payload)
    with pytest.raises(SignatureInvalid) as caught:
        open_(envelope, verifier)
    assert caught.value.reason == "SIGNATURE_SUITE_UNSUPPORTED"


def test_wrong_receiver(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    with pytest.raises(WrongReceiver) as caught:
        open_(seal(tongliang, payload, receiver="510100"), verifier)
    assert caught.value.reason == "WRONG_RECEIVER"
    assert "510100" in caught.value.message


@pytest.mark.parametrize(
    ("created_at", "reason"),
    [
        (NOW - FRESHNESS.max_age - dt.timedelta(microseconds=1), "ENVELOPE_STALE"),
        (NOW - dt.timedelta(days=1), "ENVELOPE_STALE"),
        (NOW + FRESHNESS.max_skew + dt.timedelta(microseconds=1), "ENVELOPE_FROM_FUTURE"),
        (NOW + dt.timedelta(hours=1), "ENVELOPE_FROM_FUTURE"),
    ],
    ids=["just-stale", "a-day-old", "just-ahead", "an-hour-ahead"],
)
def test_created_at_outside_the_window(
    tongliang: Signer,
    verifier: SigningCertificateVerifier,
    payload: bytes,
    created_at: dt.datetime,
    reason: str,
) -> None:
    with pytest.raises(EnvelopeStale) as caught:
        open_(seal(tongliang, payload, created_at=created_at), verifier)
    assert caught.value.reason == reason


def test_tls_peer_is_not_the_sender(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    with pytest.raises(SenderMismatch) as caught:
        open_(seal(tongliang, payload), verifier, tls_peer="510100")
    assert caught.value.reason == "TLS_PEER_NOT_SENDER"


def test_payload_record_type_differs_from_the_header(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    envelope = seal(tongliang, payload, record_type=RecordType.FEEDBACK)
    with pytest.raises(EnvelopeMalformed, match="header says feedback"):
        open_(envelope, verifier)


def test_signed_payload_that_is_not_a_record(
    tongliang: Signer, verifier: SigningCertificateVerifier
) -> None:
    with pytest.raises(EnvelopeMalformed):
        open_(seal(tongliang, b"\xff\xff"), verifier)


def test_signed_payload_with_an_invalid_record(
    tongliang: Signer, verifier: SigningCertificateVerifier, record_data: RecordData
) -> None:
    from gateway.codec import record_to_proto

    message = record_to_proto(parse_record(record_data("consumer_complaint")))
    message.consumer_complaint.respondent.division = "990000"
    envelope = seal(tongliang, message.SerializeToString(deterministic=True))
    with pytest.raises(RecordInvalid) as caught:
        open_(envelope, verifier)
    assert [v.field for v in caught.value.violations] == ["respondent.division"]


def test_expired_signing_certificate(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    later = NOW + dt.timedelta(days=3650)
    envelope = seal(tongliang, payload, created_at=later)
    with pytest.raises(CertificateRejected) as caught:
        open_(envelope, verifier, now=later)
    assert caught.value.reason == "CERTIFICATE_EXPIRED"


# --------------------------------------------------------------------------- reseal


def test_reseal_keeps_message_and_payload_and_refreshes_the_signature(
    tongliang: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> None:
    original = seal(tongliang, payload, correlation_id="c0ffee00-0000-4000-8000-000000000000")
    later = NOW + dt.timedelta(hours=2)
    resealed = reseal_envelope(tongliang, original, later)
    before, after = parse_header(original.header), parse_header(resealed.header)
    assert after.message_id == before.message_id
    assert after.correlation_id == before.correlation_id
    assert (after.sender, after.receiver, after.record_type, after.agreement_id) == (
        before.sender,
        before.receiver,
        before.record_type,
        before.agreement_id,
    )
    assert resealed.payload == original.payload
    assert after.payload_sha256 == before.payload_sha256
    assert after.created_at.ToDatetime(tzinfo=dt.UTC) == later
    assert before.created_at.ToDatetime(tzinfo=dt.UTC) == NOW
    assert resealed.signature.value != original.signature.value
    assert resealed.header != original.header
    # The original is stale by then; the resealed envelope opens.
    with pytest.raises(EnvelopeStale):
        open_(original, verifier, now=later)
    assert open_(resealed, verifier, now=later).header.message_id == before.message_id


def test_reseal_signs_with_the_current_key(
    pki: PkiLayout,
    tongliang: Signer,
    verifier: SigningCertificateVerifier,
    payload: bytes,
    tmp_path: Path,
) -> None:
    original = seal(tongliang, payload)
    paths = issue_signing_certificate(pki, TONGLIANG, not_before=CERTS_FROM, out_dir=tmp_path)
    cert = load_certificate(paths.signing_cert)
    rotated = Signer(
        bureau=TONGLIANG,
        suite=Ed25519Suite(),
        private_key=load_private_key(paths.signing_key),
        certificate_der=cert.public_bytes(serialization.Encoding.DER),
        key_id=key_id(cert),
    )
    assert rotated.key_id != tongliang.key_id
    resealed = reseal_envelope(rotated, original, NOW)
    assert parse_header(resealed.header).key_id == rotated.key_id
    assert resealed.signature.key_id == rotated.key_id
    opened = open_(resealed, verifier)
    assert opened.signer.key_id == rotated.key_id
    assert opened.header.message_id == parse_header(original.header).message_id


# --------------------------------------------------------------------------- receipts


@pytest.fixture
def receipted(
    tongliang: Signer, suining: Signer, verifier: SigningCertificateVerifier, payload: bytes
) -> tuple[OpenedEnvelope, epb.Receipt]:
    opened = open_(seal(tongliang, payload), verifier)
    receipt = issue_receipt(
        suining,
        message_id=opened.header.message_id,
        sender=opened.header.sender,
        header_sha256=opened.header_sha256,
        payload_sha256=opened.payload_sha256,
        received_at=NOW,
    )
    return opened, receipt


def _verify(
    receipt: epb.Receipt,
    opened: OpenedEnvelope,
    verifier: SigningCertificateVerifier,
    **overrides: Any,
) -> Any:
    arguments: dict[str, Any] = {
        "issuer": SUINING,
        "message_id": opened.header.message_id,
        "payload_sha256": opened.payload_sha256,
        "verifier": verifier,
        "now": NOW,
    }
    return verify_receipt(receipt, **{**arguments, **overrides})


def test_receipt_happy_path(
    receipted: tuple[OpenedEnvelope, epb.Receipt], verifier: SigningCertificateVerifier
) -> None:
    opened, receipt = receipted
    verified = _verify(receipt, opened, verifier)
    assert verified.signer.bureau == SUINING
    assert verified.received_at == NOW
    body = verified.body
    assert (body.message_id, body.sender, body.receiver) == (
        opened.header.message_id,
        TONGLIANG,
        SUINING,
    )
    assert body.header_sha256 == opened.header_sha256
    assert body.payload_sha256 == opened.payload_sha256
    assert body.status == epb.RECEIPT_STATUS_ACCEPTED


def _tamper_receipt_body(receipt: epb.Receipt, old: bytes, new: bytes) -> epb.Receipt:
    tampered = epb.Receipt()
    tampered.CopyFrom(receipt)
    assert tampered.body.count(old) == 1
    tampered.body = tampered.body.replace(old, new)
    return tampered


def test_receipt_from_the_wrong_issuer(
    receipted: tuple[OpenedEnvelope, epb.Receipt], verifier: SigningCertificateVerifier
) -> None:
    opened, receipt = receipted
    with pytest.raises(SenderMismatch) as caught:
        _verify(receipt, opened, verifier, issuer=TONGLIANG)
    assert caught.value.reason == "RECEIPT_ISSUER_MISMATCH"


def test_receipt_signed_by_another_bureau_claiming_the_issuer(
    pki: PkiLayout,
    receipted: tuple[OpenedEnvelope, epb.Receipt],
    verifier: SigningCertificateVerifier,
) -> None:
    opened, _ = receipted
    impostor = make_signer(pki, TONGLIANG, claims=SUINING)
    receipt = issue_receipt(
        impostor,
        message_id=opened.header.message_id,
        sender=TONGLIANG,
        header_sha256=opened.header_sha256,
        payload_sha256=opened.payload_sha256,
        received_at=NOW,
    )
    with pytest.raises(SenderMismatch) as caught:
        _verify(receipt, opened, verifier)
    assert caught.value.reason == "RECEIPT_ISSUER_MISMATCH"


@pytest.mark.parametrize(
    "overrides",
    [{"message_id": "00000000-0000-4000-8000-000000000000"}, {"payload_sha256": bytes(32)}],
    ids=["message-id", "payload-digest"],
)
def test_receipt_for_another_message(
    receipted: tuple[OpenedEnvelope, epb.Receipt],
    verifier: SigningCertificateVerifier,
    overrides: dict[str, Any],
) -> None:
    opened, receipt = receipted
    with pytest.raises(SignatureInvalid) as caught:
        _verify(receipt, opened, verifier, **overrides)
    assert caught.value.reason == "RECEIPT_MISMATCH"


def test_tampered_receipt_body(
    receipted: tuple[OpenedEnvelope, epb.Receipt], verifier: SigningCertificateVerifier
) -> None:
    opened, receipt = receipted
    # Point the receipt at another message id; the body still parses.
    tampered = _tamper_receipt_body(receipt, b"6f1c1a52", b"6f1c1a53")
    with pytest.raises(SignatureInvalid) as caught:
        _verify(tampered, opened, verifier, message_id="6f1c1a53-3b0e-4c57-9d4e-0b6a3f3c2a10")
    assert caught.value.reason == "SIGNATURE_INVALID"


def test_receipt_body_garbage(
    receipted: tuple[OpenedEnvelope, epb.Receipt], verifier: SigningCertificateVerifier
) -> None:
    opened, receipt = receipted
    receipt.body = b"\xff\xff"
    with pytest.raises(EnvelopeMalformed):
        _verify(receipt, opened, verifier)


def test_receipt_key_id_mismatch(
    receipted: tuple[OpenedEnvelope, epb.Receipt], verifier: SigningCertificateVerifier
) -> None:
    opened, receipt = receipted
    receipt.signature.key_id = "0" * 64
    with pytest.raises(SignatureInvalid) as caught:
        _verify(receipt, opened, verifier)
    assert caught.value.reason == "KEY_ID_MISMATCH"


def test_an_envelope_signature_cannot_pass_as_a_receipt(
    suining: Signer,
    receipted: tuple[OpenedEnvelope, epb.Receipt],
    verifier: SigningCertificateVerifier,
) -> None:
    opened, receipt = receipted
    receipt.signature.value = suining.sign(ENVELOPE_LABEL, receipt.body)
    with pytest.raises(SignatureInvalid) as caught:
        _verify(receipt, opened, verifier)
    assert caught.value.reason == "SIGNATURE_INVALID"


def test_receipt_from_a_foreign_ca(
    foreign_pki: PkiLayout,
    receipted: tuple[OpenedEnvelope, epb.Receipt],
    verifier: SigningCertificateVerifier,
) -> None:
    opened, _ = receipted
    receipt = issue_receipt(
        make_signer(foreign_pki, SUINING),
        message_id=opened.header.message_id,
        sender=TONGLIANG,
        header_sha256=opened.header_sha256,
        payload_sha256=opened.payload_sha256,
        received_at=NOW,
    )
    with pytest.raises(CertificateRejected) as caught:
        _verify(receipt, opened, verifier)
    assert caught.value.reason == "CERTIFICATE_UNTRUSTED"
