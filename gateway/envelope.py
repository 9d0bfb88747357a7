"""Envelopes and receipts: build, sign, open and verify — bytes in, decisions out.

No I/O here. The node calls :func:`seal_envelope` when a record enters the
outbox, :func:`open_envelope` for every envelope a peer submits (each check has
its own error, see :mod:`gateway.errors`), :func:`issue_receipt` once the
envelope is durable in the inbox, and :func:`verify_receipt` for every receipt
it gets back.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.clock import to_timestamp
from gateway.codec import (
    decode_payload,
    record_type_from_proto,
    record_type_to_proto,
    to_datetime,
)
from gateway.errors import (
    EnvelopeMalformed,
    EnvelopeStale,
    PayloadDigestMismatch,
    SenderMismatch,
    SignatureInvalid,
    WrongReceiver,
)
from gateway.identifiers import check_division_code
from gateway.pki import SigningCertificateVerifier, VerifiedSigner
from gateway.records import Record, RecordType
from gateway.signing import ENVELOPE_LABEL, RECEIPT_LABEL, Signer, sha256, suite_named

__all__ = [
    "Freshness",
    "OpenedEnvelope",
    "VerifiedReceipt",
    "issue_receipt",
    "new_message_id",
    "open_envelope",
    "parse_envelope",
    "reseal_envelope",
    "seal_envelope",
    "verify_receipt",
]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_message_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old (or how far in the future) a ``created_at`` may be."""

    max_age: dt.timedelta = dt.timedelta(minutes=15)
    max_skew: dt.timedelta = dt.timedelta(minutes=5)


def seal_envelope(
    signer: Signer,
    *,
    message_id: str,
    receiver: str,
    record_type: RecordType,
    agreement_id: str,
    correlation_id: str,
    payload: bytes,
    created_at: dt.datetime,
) -> epb.Envelope:
    """Serialise a header for ``payload`` once, and sign header and payload bytes."""
    header = epb.EnvelopeHeader(
        message_id=message_id,
        sender=signer.bureau,
        receiver=receiver,
        record_type=record_type_to_proto(record_type),
        agreement_id=agreement_id,
        correlation_id=correlation_id,
        created_at=to_timestamp(created_at),
        payload_sha256=sha256(payload),
        suite=signer.suite.name,
        key_id=signer.key_id,
    )
    header_bytes = header.SerializeToString(deterministic=True)
    return epb.Envelope(
        header=header_bytes,
        payload=payload,
        signature=epb.Signature(
            suite=signer.suite.name,
            key_id=signer.key_id,
            value=signer.sign(ENVELOPE_LABEL, header_bytes, payload),
        ),
        signer_certificate=signer.certificate_der,
    )


def reseal_envelope(
    signer: Signer, envelope: epb.Envelope, created_at: dt.datetime
) -> epb.Envelope:
    """The same message (id, payload) under a fresh ``created_at`` and current key.

    Used when an envelope waited in the outbox longer than the peer's freshness
    window: the message id stays, so the peer still de-duplicates it.
    """
    header = parse_header(envelope.header)
    return seal_envelope(
        signer,
        message_id=header.message_id,
        receiver=header.receiver,
        record_type=record_type_from_proto(header.record_type),
        agreement_id=header.agreement_id,
        correlation_id=header.correlation_id,
        payload=envelope.payload,
        created_at=created_at,
    )


def parse_envelope(data: bytes) -> epb.Envelope:
    envelope = epb.Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeMalformed(f"not a chuanyu.exchange.v1.Envelope: {exc}") from exc
    return envelope


def parse_header(data: bytes) -> epb.EnvelopeHeader:
    header = epb.EnvelopeHeader()
    try:
        header.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeMalformed(
            f"header is not a chuanyu.exchange.v1.EnvelopeHeader: {exc}"
        ) from exc
    return header


def _check_header_fields(header: epb.EnvelopeHeader) -> None:
    if not _UUID.fullmatch(header.message_id):
        raise EnvelopeMalformed(
            f"header.message_id must be a lower-case UUID, got {header.message_id[:64]!r}"
        )
    for name in ("sender", "receiver"):
        value = getattr(header, name)
        if check_division_code(value) is not None:
            raise EnvelopeMalformed(
                f"header.{name} must be a 6-digit bureau id, got {value[:16]!r}"
            )
    record_type_from_proto(header.record_type)
    if not header.agreement_id:
        raise EnvelopeMalformed("header.agreement_id is empty: every envelope names its agreement")
    if not header.HasField("created_at"):
        raise EnvelopeMalformed("header.created_at is missing")
    if len(header.payload_sha256) != 32:
        raise EnvelopeMalformed("header.payload_sha256 must be 32 bytes")
    if not header.suite or not header.key_id:
        raise EnvelopeMalformed("header.suite and header.key_id are required")


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """An envelope that passed every check."""

    header: epb.EnvelopeHeader
    record: Record
    record_type: RecordType
    header_sha256: bytes
    payload_sha256: bytes
    signer: VerifiedSigner
    created_at: dt.datetime


def open_envelope(
    envelope: epb.Envelope,
    *,
    receiver: str,
    tls_peer: str | None,
    verifier: SigningCertificateVerifier,
    now: dt.datetime,
    freshness: Freshness,
) -> OpenedEnvelope:
    """Check an envelope from a peer, cheapest and most specific checks first.

    ``tls_peer`` is the bureau bound to the caller's TLS certificate (``None``
    only for envelopes checked offline). Raises a :class:`~gateway.errors.PeerError`
    naming the first check that failed.
    """
    header = parse_header(envelope.header)
    _check_header_fields(header)
    if tls_peer is not None and tls_peer != header.sender:
        raise SenderMismatch(
            f"TLS peer is bureau {tls_peer} but the header's sender is {header.sender}",
            reason="TLS_PEER_NOT_SENDER",
        )
    if header.receiver != receiver:
        raise WrongReceiver(
            f"envelope {header.message_id} is addressed to bureau {header.receiver}, "
            f"this node is {receiver}"
        )
    created_at = to_datetime(header.created_at, field="header.created_at")
    if created_at < now - freshness.max_age:
        raise EnvelopeStale(
            f"envelope {header.message_id} was created at {created_at.isoformat()}, "
            f"older than the {int(freshness.max_age.total_seconds())} s freshness window"
        )
    if created_at > now + freshness.max_skew:
        raise EnvelopeStale(
            f"envelope {header.message_id} was created at {created_at.isoformat()}, "
            f"more than {int(freshness.max_skew.total_seconds())} s in the future",
            reason="ENVELOPE_FROM_FUTURE",
        )
    signer = verifier.verify(envelope.signer_certificate, now=now)
    if signer.key_id != header.key_id:
        raise SignatureInvalid(
            f"header.key_id {header.key_id[:16]}… does not match the signing certificate "
            f"({signer.key_id[:16]}…)",
            reason="KEY_ID_MISMATCH",
        )
    if signer.bureau != header.sender:
        raise SenderMismatch(
            f"envelope is signed by bureau {signer.bureau} but its sender is {header.sender}",
            reason="SIGNER_NOT_SENDER",
        )
    signature = envelope.signature
    if signature.suite != header.suite or signature.key_id != header.key_id:
        raise SignatureInvalid(
            "signature suite/key id differ from the signed header's",
            reason="SIGNATURE_HEADER_MISMATCH",
        )
    payload_sha256 = sha256(envelope.payload)
    if payload_sha256 != header.payload_sha256:
        raise PayloadDigestMismatch(
            f"payload of envelope {header.message_id} does not match header.payload_sha256 "
            f"(got {payload_sha256.hex()[:16]}…, signed {header.payload_sha256.hex()[:16]}…)"
        )
    suite_named(header.suite).verify(
        signer.public_key,
        signature.value,
        ENVELOPE_LABEL + sha256(envelope.header) + payload_sha256,
    )
    record = decode_payload(envelope.payload)
    record_type = record_type_from_proto(header.record_type)
    if record.record_type != record_type:
        raise EnvelopeMalformed(
            f"header says {record_type.value} but the payload holds {record.record_type.value}"
        )
    return OpenedEnvelope(
        header=header,
        record=record,
        record_type=record_type,
        header_sha256=sha256(envelope.header),
        payload_sha256=payload_sha256,
        signer=signer,
        created_at=created_at,
    )


def issue_receipt(
    signer: Signer,
    *,
    message_id: str,
    sender: str,
    header_sha256: bytes,
    payload_sha256: bytes,
    received_at: dt.datetime,
) -> epb.Receipt:
    """Sign a receipt for an envelope that is already durable in the inbox."""
    body = epb.ReceiptBody(
        message_id=message_id,
        sender=sender,
        receiver=signer.bureau,
        header_sha256=header_sha256,
        payload_sha256=payload_sha256,
        received_at=to_timestamp(received_at),
        status=epb.RECEIPT_STATUS_ACCEPTED,
        suite=signer.suite.name,
        key_id=signer.key_id,
    )
    body_bytes = body.SerializeToString(deterministic=True)
    return epb.Receipt(
        body=body_bytes,
        signature=epb.Signature(
            suite=signer.suite.name,
            key_id=signer.key_id,
            value=signer.sign(RECEIPT_LABEL, body_bytes),
        ),
        signer_certificate=signer.certificate_der,
    )


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    body: epb.ReceiptBody
    signer: VerifiedSigner
    received_at: dt.datetime


def verify_receipt(
    receipt: epb.Receipt,
    *,
    issuer: str,
    message_id: str,
    payload_sha256: bytes,
    verifier: SigningCertificateVerifier,
    now: dt.datetime,
) -> VerifiedReceipt:
    """Check that ``issuer`` signed a receipt for exactly this message and payload."""
    body = epb.ReceiptBody()
    try:
        body.ParseFromString(receipt.body)
    except DecodeError as exc:
        raise EnvelopeMalformed(f"receipt body does not parse: {exc}") from exc
    signer = verifier.verify(receipt.signer_certificate, now=now)
    if signer.bureau != issuer or body.receiver != issuer:
        raise SenderMismatch(
            f"receipt for {message_id} is signed by bureau {signer.bureau} "
            f"(body says {body.receiver}), expected {issuer}",
            reason="RECEIPT_ISSUER_MISMATCH",
        )
    if body.key_id != signer.key_id or receipt.signature.key_id != signer.key_id:
        raise SignatureInvalid(
            "receipt key id does not match its certificate", reason="KEY_ID_MISMATCH"
        )
    suite_named(body.suite).verify(
        signer.public_key, receipt.signature.value, RECEIPT_LABEL + sha256(receipt.body)
    )
    if body.message_id != message_id or body.payload_sha256 != payload_sha256:
        raise SignatureInvalid(
            f"receipt names message {body.message_id} / payload "
            f"{body.payload_sha256.hex()[:16]}…, not the message it answers",
            reason="RECEIPT_MISMATCH",
        )
    if body.status != epb.RECEIPT_STATUS_ACCEPTED:
        raise SignatureInvalid("receipt status is not ACCEPTED", reason="RECEIPT_STATUS")
    return VerifiedReceipt(
        body=body,
        signer=signer,
        received_at=to_datetime(body.received_at, field="receipt received_at"),
    )
