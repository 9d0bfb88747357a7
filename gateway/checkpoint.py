"""Reconciliation checkpoints: a node's signed account of what it exchanged with a partner.

Both sides count by the same clock: the receiver's ``received_at``, which the
receiver stores in its inbox and signs into every receipt the sender keeps. So
for any period the sender's "delivered" set and the receiver's "received" set
must be equal, and any difference is a real gap, never a boundary effect.

Pure: bytes and records in, signed bytes and verdicts out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from chuanyu.exchange.v1 import checkpoint_pb2 as cpb
from chuanyu.exchange.v1 import envelope_pb2 as epb
from gateway.clock import to_timestamp
from gateway.codec import record_type_to_proto
from gateway.errors import EnvelopeMalformed, SenderMismatch, SignatureInvalid
from gateway.pki import SigningCertificateVerifier
from gateway.signing import Signer, sha256, suite_named

__all__ = [
    "CHECKPOINT_LABEL",
    "PeriodAccount",
    "ids_digest",
    "sign_checkpoint",
    "verify_checkpoint",
]

CHECKPOINT_LABEL = b"chuanyu.exchange.v1.Checkpoint\n"


def ids_digest(ids: Iterable[str]) -> bytes:
    """SHA-256 over the sorted ids, one per line: equal sets give equal digests."""
    return hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode()).digest()


@dataclass(frozen=True, slots=True)
class PeriodAccount:
    """What one node holds for one partner and period, per record type."""

    sent: Mapping[str, frozenset[str]]  # record type -> message ids delivered (receipt held)
    received: Mapping[str, frozenset[str]]  # record type -> message ids in the inbox
    log_seq: int
    log_head: bytes

    def all_sent(self) -> frozenset[str]:
        return frozenset().union(*self.sent.values()) if self.sent else frozenset()

    def all_received(self) -> frozenset[str]:
        return frozenset().union(*self.received.values()) if self.received else frozenset()


def sign_checkpoint(
    signer: Signer,
    *,
    peer: str,
    period_start: dt.datetime,
    period_end: dt.datetime,
    account: PeriodAccount,
    now: dt.datetime,
) -> cpb.SignedCheckpoint:
    types = sorted(set(account.sent) | set(account.received))
    body = cpb.CheckpointBody(
        issuer=signer.bureau,
        peer=peer,
        period_start=to_timestamp(period_start),
        period_end=to_timestamp(period_end),
        created_at=to_timestamp(now),
        counts=[
            cpb.TypeCount(
                record_type=record_type_to_proto(t),
                sent=len(account.sent.get(t, ())),
                received=len(account.received.get(t, ())),
            )
            for t in types
        ],
        log_seq=account.log_seq,
        log_head=account.log_head,
        sent_ids_sha256=ids_digest(account.all_sent()),
        received_ids_sha256=ids_digest(account.all_received()),
        suite=signer.suite.name,
        key_id=signer.key_id,
    )
    body_bytes = body.SerializeToString(deterministic=True)
    return cpb.SignedCheckpoint(
        body=body_bytes,
        signature=epb.Signature(
            suite=signer.suite.name,
            key_id=signer.key_id,
            value=signer.sign(CHECKPOINT_LABEL, body_bytes),
        ),
        signer_certificate=signer.certificate_der,
    )


def verify_checkpoint(
    signed: cpb.SignedCheckpoint,
    *,
    issuer: str,
    verifier: SigningCertificateVerifier,
    now: dt.datetime,
) -> cpb.CheckpointBody:
    """Check that ``issuer`` signed this checkpoint; returns its body."""
    body = cpb.CheckpointBody()
    try:
        body.ParseFromString(signed.body)
    except DecodeError as exc:
        raise EnvelopeMalformed(f"checkpoint body does not parse: {exc}") from exc
    signer = verifier.verify(signed.signer_certificate, now=now)
    if signer.bureau != issuer or body.issuer != issuer:
        raise SenderMismatch(
            f"checkpoint signed by bureau {signer.bureau} (body says {body.issuer}), "
            f"expected {issuer}",
            reason="CHECKPOINT_ISSUER_MISMATCH",
        )
    if body.key_id != signer.key_id:
        raise SignatureInvalid("checkpoint key id does not match its certificate")
    suite_named(body.suite).verify(
        signer.public_key, signed.signature.value, CHECKPOINT_LABEL + sha256(signed.body)
    )
    return body
