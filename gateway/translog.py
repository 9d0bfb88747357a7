"""The transfer log's hash chain: what an entry is, how it is hashed, how a chain is verified.

Each entry's hash is ``SHA-256(prev_hash || canonical JSON of the entry)``; the
first entry's ``prev_hash`` is 32 zero bytes. The canonical JSON has sorted keys,
no spaces, UTF-8. Entries hold metadata and digests, never record content or
personal information, so purging stored payloads never breaks the chain.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "ChainVerdict",
    "Direction",
    "EventKind",
    "LogEntry",
    "LogEvent",
    "entry_hash",
    "verify_chain",
]

GENESIS_HASH = bytes(32)


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"
    LOCAL = "local"


class EventKind(enum.StrEnum):
    ACCEPTED_FROM_LOCAL = "accepted_from_local"  # a local system handed us a record
    REJECTED_FROM_LOCAL = "rejected_from_local"
    SIGNED = "signed"  # sealed into an envelope, durable in the outbox
    RESEALED = "resealed"  # re-signed with a fresh created-at after a long wait
    SENT = "sent"  # delivered to the peer, receipt verified
    RETRY_SCHEDULED = "retry_scheduled"
    REJECTED_BY_PEER = "rejected_by_peer"
    RECEIPT_STORED = "receipt_stored"
    RECEIVED = "received"  # an envelope passed every check, durable in the inbox
    DUPLICATE = "duplicate"  # a repeated (sender, message id), original receipt returned
    REJECTED = "rejected"  # an envelope from a peer was refused
    RECEIPT_ISSUED = "receipt_issued"
    DELIVERED_TO_LOCAL = "delivered_to_local"
    DEAD_LETTERED = "dead_lettered"
    REDRIVEN = "redriven"
    PERSONAL_DATA_VIEWED = "personal_data_viewed"  # an operator unmasked a record (console)
    CHECKPOINT = "checkpoint"  # signed reconciliation checkpoints exchanged with a partner
    PURGED = "purged"  # personal information removed from a stored payload after retention


@dataclass(frozen=True, slots=True)
class LogEvent:
    """What happened, before the store gives it a sequence number and a hash."""

    kind: EventKind
    direction: Direction
    peer: str = ""
    message_id: str = ""
    record_type: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A stored transfer-log entry."""

    seq: int
    at: str  # ISO 8601, UTC, microseconds
    kind: str
    direction: str
    peer: str
    message_id: str
    record_type: str
    detail: str  # canonical JSON text
    prev_hash: bytes
    hash: bytes

    def canonical_bytes(self) -> bytes:
        return canonical_entry_bytes(
            seq=self.seq,
            at=self.at,
            kind=self.kind,
            direction=self.direction,
            peer=self.peer,
            message_id=self.message_id,
            record_type=self.record_type,
            detail=self.detail,
        )


def canonical_detail(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_entry_bytes(
    *,
    seq: int,
    at: str,
    kind: str,
    direction: str,
    peer: str,
    message_id: str,
    record_type: str,
    detail: str,
) -> bytes:
    body = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "direction": direction,
        "peer": peer,
        "message_id": message_id,
        "record_type": record_type,
        "detail": detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    ok: bool
    entries: int
    head: bytes
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(entries: Iterable[LogEntry]) -> ChainVerdict:
    """Walk the chain in sequence order; stop at the first entry that does not hold."""
    prev = GENESIS_HASH
    expected_seq: int | None = None
    count = 0
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            return ChainVerdict(
                False, count, prev, entry.seq, f"sequence gap: expected {expected_seq}"
            )
        if entry.prev_hash != prev:
            return ChainVerdict(
                False, count, prev, entry.seq, "prev_hash does not match the previous entry's hash"
            )
        if entry_hash(prev, entry.canonical_bytes()) != entry.hash:
            return ChainVerdict(
                False, count, prev, entry.seq, "content does not match its hash (entry altered)"
            )
        prev = entry.hash
        expected_seq = entry.seq + 1
        count += 1
    return ChainVerdict(True, count, prev)
