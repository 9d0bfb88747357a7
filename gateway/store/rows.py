"""Rows as both engines store them, mapped once: column lists, row mappers, the log chain.

Each engine selects the same columns in the same order, so one mapper reads a
``sqlite3`` tuple and an ``asyncpg.Record`` alike (both index by position). Times
differ by engine (SQLite keeps ISO text and epoch seconds, PostgreSQL
``timestamptz``); :func:`to_datetime` and :func:`to_iso` take either.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from gateway.clock import iso_utc, utc_now
from gateway.store.at_rest import AtRest
from gateway.store.base import InboundRow, OutboundRow, OutboundState, StoredPayload
from gateway.store.reads import LogRow, StoredMessage, TransferRow
from gateway.translog import LogEntry, LogEvent, canonical_detail, canonical_entry_bytes, entry_hash

__all__ = [
    "INBOX_COLUMNS",
    "LOG_COLUMNS",
    "OUTBOX_COLUMNS",
    "OUTBOX_FIELDS",
    "ChainHead",
    "Row",
    "inbound_row",
    "log_entry",
    "log_row",
    "open_stored",
    "outbound_row",
    "stored_message",
    "stored_payload",
    "to_datetime",
    "to_iso",
    "transfer_row",
]


class Row(Protocol):
    """A result row of either driver, read by position (a ``sqlite3`` tuple, an
    ``asyncpg.Record``)."""

    def __getitem__(self, index: Any, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


OUTBOX_FIELDS = (
    "message_id",
    "receiver",
    "record_type",
    "record_key",
    "correlation_id",
    "idempotency_key",
    "envelope",
    "created_at",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
)
OUTBOX_COLUMNS = ", ".join(OUTBOX_FIELDS)
INBOX_COLUMNS = (
    "seq, sender, message_id, record_type, record_key, correlation_id, envelope, header_sha256, "
    "payload_sha256, received_at, delivered_at"
)
# The transfer log's own order: (seq, at, kind, direction, peer, message_id, record_type,
# detail, prev_hash, hash); console rows take the first eight.
LOG_COLUMNS = "seq, at, kind, direction, peer, message_id, record_type, detail, prev_hash, hash"


def to_datetime(value: str | float | dt.datetime) -> dt.datetime:
    """An aware datetime from ISO text, epoch seconds or a driver's datetime."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.fromtimestamp(value, dt.UTC)


def to_iso(value: str | dt.datetime) -> str:
    """The stored ISO text (SQLite keeps it; PostgreSQL's ``timestamptz`` is turned into it)."""
    return value if isinstance(value, str) else iso_utc(value)


def outbound_row(r: Row, at_rest: AtRest, receipt: bytes = b"") -> OutboundRow:
    """From the :data:`OUTBOX_COLUMNS`, envelope opened."""
    return OutboundRow(
        message_id=r[0],
        receiver=r[1],
        record_type=r[2],
        record_key=r[3],
        correlation_id=r[4],
        idempotency_key=r[5] or "",
        envelope=at_rest.open_outbound(r[0], bytes(r[6])),
        created_at=to_datetime(r[7]),
        state=OutboundState(r[8]),
        attempts=int(r[9]),
        next_attempt_at=to_datetime(r[10]),
        last_error=r[11],
        receipt=receipt,
    )


def inbound_row(r: Row, at_rest: AtRest, receipt: bytes = b"") -> InboundRow:
    """From the :data:`INBOX_COLUMNS`, envelope opened."""
    return InboundRow(
        seq=int(r[0]),
        sender=r[1],
        message_id=r[2],
        record_type=r[3],
        record_key=r[4],
        correlation_id=r[5],
        envelope=at_rest.open_inbound(r[1], r[2], bytes(r[6])),
        header_sha256=bytes(r[7]),
        payload_sha256=bytes(r[8]),
        received_at=to_datetime(r[9]),
        delivered_at=None if r[10] is None else to_datetime(r[10]),
        receipt=receipt,
    )


def open_stored(at_rest: AtRest, direction: str, sender: str, message_id: str, blob: Any) -> bytes:
    """A stored envelope of either box, opened (``sender`` matters for the inbox only)."""
    if direction == "inbound":
        return at_rest.open_inbound(sender, message_id, bytes(blob))
    return at_rest.open_outbound(message_id, bytes(blob))


def stored_payload(r: Row, at_rest: AtRest) -> StoredPayload:
    """From (direction, sender, message_id, stored_at, envelope)."""
    direction, sender, message_id = r[0], r[1], r[2]
    envelope = open_stored(at_rest, direction, sender, message_id, r[4])
    return StoredPayload(direction, sender, message_id, to_datetime(r[3]), envelope)


def log_entry(r: Row) -> LogEntry:
    """From the :data:`LOG_COLUMNS` (the entry's own field order)."""
    return LogEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], bytes(r[8]), bytes(r[9]))


def log_row(r: Row) -> LogRow:
    """A console row from the first eight :data:`LOG_COLUMNS`, its detail parsed."""
    try:
        detail = json.loads(r[7])
    except ValueError:
        detail = {}
    return LogRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], detail)


def transfer_row(r: Row) -> TransferRow:
    """From (direction, message_id, peer, record_type, record_key, status, at, attempts,
    last_error)."""
    return TransferRow(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), to_iso(r[6]),
        int(r[7]), str(r[8]),
    )  # fmt: skip


def stored_message(r: Row, at_rest: AtRest, receipt: Any) -> StoredMessage:
    """From a transfer row's columns followed by the stored envelope (and, for the inbox,
    the sender); the envelope opened."""
    row = transfer_row(r)
    envelope = open_stored(at_rest, row.direction, row.peer, row.message_id, r[9])
    return StoredMessage(
        row.direction,
        row.message_id,
        row.peer,
        row.record_type,
        row.record_key,
        row.status,
        row.at,
        row.attempts,
        row.last_error,
        envelope,
        b"" if receipt is None else bytes(receipt),
    )


class ChainHead:
    """The head of the hash chain, and the rows that extend it (one per event).

    Only one writer at a time holds it: SQLite's writer thread, or PostgreSQL's
    batch holding the ``log_head`` row lock.
    """

    def __init__(self, seq: int, head: bytes) -> None:
        self.seq = seq
        self.head = head

    def extend(self, events: Sequence[LogEvent]) -> list[tuple[Any, ...]]:
        """Rows in :data:`LOG_COLUMNS` order for ``events``, each stamped with the time it
        joins the chain, moving the head past them."""
        rows = []
        for event in events:
            seq = self.seq + 1
            stamp = iso_utc(utc_now())
            detail = canonical_detail(event.detail)
            canonical = canonical_entry_bytes(
                seq=seq,
                at=stamp,
                kind=event.kind.value,
                direction=event.direction.value,
                peer=event.peer,
                message_id=event.message_id,
                record_type=event.record_type,
                detail=detail,
            )
            digest = entry_hash(self.head, canonical)
            kind, direction = event.kind.value, event.direction.value
            row = (seq, stamp, kind, direction, event.peer, event.message_id, event.record_type)
            rows.append((*row, detail, self.head, digest))
            self.seq, self.head = seq, digest
        return rows
