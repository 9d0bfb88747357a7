"""What each Store operation writes and reads, decided once for both engines.

Statements use ``?`` placeholders (PostgreSQL's engine numbers them) and two
fields an engine fills in: ``{order}``, its insertion-order column of the outbox,
and ``{release}``, what else a row leaving the pending queue sets (PostgreSQL ends
the row's delivery claim). :class:`Times` is how an engine stores a time; the
value builders here use it, so a row is laid out once.

A write is a list of :class:`Step`: the first statement's row count decides whether
the others run and which events are logged. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.checkpoint import PeriodAccount
from gateway.store.at_rest import AtRest
from gateway.store.base import InboundRow, OutboundRow, OutboundState
from gateway.store.events import error_text
from gateway.store.rows import INBOX_COLUMNS, LOG_COLUMNS, OUTBOX_COLUMNS, OUTBOX_FIELDS, Row
from gateway.translog import GENESIS_HASH, LogEvent

__all__ = [
    "ACKNOWLEDGE",
    "DEAD_LETTER",
    "DEAD_LETTERED",
    "DELIVERED",
    "DELIVERED_STATE",
    "EXPIRED",
    "FAILED_ATTEMPT",
    "GET_INBOUND",
    "GET_OUTBOUND",
    "INBOUND_BY_KEY",
    "INBOX_INSERT",
    "INBOX_INSERT_NEW",
    "LOG_HEAD",
    "OUTBOUND_BY_IDEMPOTENCY_KEY",
    "OUTBOUND_BY_KEY",
    "OUTBOUND_IN_STATE",
    "OUTBOX_INSERT",
    "PENDING",
    "PERIOD_RECEIVED",
    "PERIOD_SENT",
    "PURGE_INBOX",
    "PURGE_OUTBOX",
    "READ_LOG",
    "RECEIPT_ISSUED",
    "RECEIPT_OF",
    "RECEIPT_RECEIVED",
    "REDRIVE",
    "REPLACE_ENVELOPE",
    "UNDELIVERED_IDS",
    "Step",
    "Times",
    "delivered",
    "inbox_values",
    "outbox_values",
    "period_account",
    "undelivered",
]

PENDING = OutboundState.PENDING.value
DELIVERED_STATE = OutboundState.DELIVERED.value
DEAD_LETTERED = OutboundState.DEAD_LETTERED.value


@dataclass(frozen=True, slots=True)
class Times:
    """How an engine stores a time: in text columns, and in the due column
    (``next_attempt_at``, which SQLite keeps as epoch seconds)."""

    text: Callable[[dt.datetime], Any]
    due: Callable[[dt.datetime], Any]


@dataclass(frozen=True, slots=True)
class Step:
    """One call's statements, run in one savepoint of the engine's write transaction."""

    statements: Sequence[tuple[str, Sequence[Any]]]
    events: Sequence[LogEvent] = ()
    # Logged instead of ``events`` when the first statement touched no row.
    otherwise: Sequence[LogEvent] = ()
    # Run the rest and log ``events`` even when the first statement touched no row.
    always: bool = False

    @property
    def first(self) -> tuple[str, Sequence[Any]]:
        return self.statements[0]

    def after(self, count: int) -> tuple[Sequence[tuple[str, Sequence[Any]]], Sequence[LogEvent]]:
        """What to run next and what to log, once the first statement touched ``count`` rows."""
        if count or self.always:
            return self.statements[1:], self.events
        return (), self.otherwise


# ---------------------------------------------------------------------------- outbound

# A known idempotency key queues nothing: the insert touches no row and logs nothing.
OUTBOX_INSERT = (
    f"INSERT INTO outbox ({OUTBOX_COLUMNS}, age_from) VALUES ({','.join('?' * 13)}) "
    "ON CONFLICT (idempotency_key) DO NOTHING"
)
OUTBOUND_BY_IDEMPOTENCY_KEY = f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = ?"
_O_COLUMNS = ", ".join(f"o.{name}" for name in OUTBOX_FIELDS)
GET_OUTBOUND = (
    f"SELECT {_O_COLUMNS}, r.receipt FROM outbox AS o LEFT JOIN receipts AS r "
    "ON r.issuer = o.receiver AND r.message_id = o.message_id WHERE o.message_id = ?"
)
OUTBOUND_BY_KEY = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE record_type = ? AND record_key = ? "
    "AND receiver = ? ORDER BY {order} DESC LIMIT 1"
)
OUTBOUND_IN_STATE = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY {{order}} LIMIT ?"
)
DELIVERED = (
    "UPDATE outbox SET state = ?, delivered_at = ?, attempts = attempts + 1, last_error = '', "
    "receipt_received_at = ?{release} WHERE message_id = ? AND state <> ?"
)
RECEIPT_RECEIVED = (
    "INSERT INTO receipts (issuer, message_id, direction, receipt, stored_at) "
    "SELECT receiver, message_id, 'received', ?, ? FROM outbox WHERE message_id = ? "
    "ON CONFLICT (issuer, message_id) DO UPDATE SET direction = excluded.direction, "
    "receipt = excluded.receipt, stored_at = excluded.stored_at"
)
FAILED_ATTEMPT = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
    "state = ?{release} WHERE message_id = ? AND state = ?"
)
# Due at once, attempts reset, and the dead-letter age counted from now.
REDRIVE = (
    "UPDATE outbox SET state = ?, next_attempt_at = ?, attempts = 0, age_from = ?{release} "
    "WHERE message_id = ? AND state = ?"
)
REPLACE_ENVELOPE = "UPDATE outbox SET envelope = ? WHERE message_id = ?"
# The sweep reads its candidates, then dead-letters each one that is still as it read it
# (the attempts it logs are the ones it saw; a row that changed waits for the next sweep).
EXPIRED = (
    "SELECT message_id, record_type, attempts, last_error FROM outbox "
    "WHERE receiver = ? AND state = ? AND age_from < ? ORDER BY {order}"
)
DEAD_LETTER = (
    "UPDATE outbox SET state = ?{release} WHERE message_id = ? AND state = ? AND attempts = ?"
)


def outbox_values(row: OutboundRow, at_rest: AtRest, times: Times) -> tuple[Any, ...]:
    """For :data:`OUTBOX_INSERT`: the row, its envelope sealed, its age counted from creation."""
    return (
        row.message_id,
        row.receiver,
        row.record_type,
        row.record_key,
        row.correlation_id,
        row.idempotency_key or None,
        at_rest.seal_outbound(row.message_id, row.envelope),
        times.text(row.created_at),
        row.state.value,
        row.attempts,
        times.due(row.next_attempt_at),
        error_text(row.last_error),
        times.text(row.created_at),
    )


def delivered(
    message_id: str, receipt: bytes, now: Any, received_at: Any, release: str
) -> list[tuple[str, Sequence[Any]]]:
    """Mark delivered (unless it is already) and keep the partner's receipt."""
    return [
        (
            DELIVERED.format(release=release),
            (DELIVERED_STATE, now, received_at, message_id, DELIVERED_STATE),
        ),
        (RECEIPT_RECEIVED, (receipt, now, message_id)),
    ]


# ---------------------------------------------------------------------------- inbound

INBOX_INSERT = (
    "INSERT INTO inbox (sender, message_id, record_type, record_key, correlation_id, envelope, "
    "header_sha256, payload_sha256, received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
# A (sender, message id) already in the inbox inserts nothing: the call logs its duplicate events.
INBOX_INSERT_NEW = INBOX_INSERT + " ON CONFLICT (sender, message_id) DO NOTHING"
GET_INBOUND = f"SELECT {INBOX_COLUMNS} FROM inbox WHERE sender = ? AND message_id = ?"
INBOUND_BY_KEY = (
    f"SELECT {INBOX_COLUMNS} FROM inbox WHERE record_type = ? AND record_key = ? "
    "ORDER BY seq DESC LIMIT 1"
)
RECEIPT_ISSUED = (
    "INSERT INTO receipts (issuer, message_id, direction, receipt, stored_at) "
    "VALUES (?, ?, 'issued', ?, ?) ON CONFLICT DO NOTHING"
)
RECEIPT_OF = "SELECT receipt FROM receipts WHERE issuer = ? AND message_id = ?"
# The local system takes messages by id; the earliest undelivered row of each id is the one.
UNDELIVERED_IDS = (
    "SELECT sender, message_id, record_type FROM inbox WHERE delivered_at IS NULL "
    "AND message_id IN ({ids}) ORDER BY seq"
)
ACKNOWLEDGE = (
    "UPDATE inbox SET delivered_at = ? WHERE sender = ? AND message_id = ? AND delivered_at IS NULL"
)


def inbox_values(row: InboundRow, at_rest: AtRest, times: Times) -> tuple[Any, ...]:
    """For :data:`INBOX_INSERT`: the row, its envelope sealed."""
    return (
        row.sender,
        row.message_id,
        row.record_type,
        row.record_key,
        row.correlation_id,
        at_rest.seal_inbound(row.sender, row.message_id, row.envelope),
        row.header_sha256,
        row.payload_sha256,
        times.text(row.received_at),
    )


def undelivered(after_seq: int, limit: int, record_types: Sequence[str]) -> tuple[str, list[Any]]:
    """Inbox rows the local system has not taken, after ``after_seq``, in arrival order."""
    types = f" AND record_type IN ({','.join('?' * len(record_types))})" if record_types else ""
    return (
        f"SELECT {INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > ?{types} "
        "ORDER BY seq LIMIT ?",
        [after_seq, *record_types, limit],
    )


# ---------------------------------------------------------------------------- reconciliation

PERIOD_SENT = (
    "SELECT message_id, record_type FROM outbox WHERE receiver = ? "
    "AND receipt_received_at >= ? AND receipt_received_at < ?"
)
PERIOD_RECEIVED = (
    "SELECT message_id, record_type FROM inbox WHERE sender = ? "
    "AND received_at >= ? AND received_at < ?"
)
LOG_HEAD = "SELECT seq, hash FROM transfer_log ORDER BY seq DESC LIMIT 1"


def period_account(sent: Iterable[Row], received: Iterable[Row], head: Row | None) -> PeriodAccount:
    """From the rows of :data:`PERIOD_SENT`, :data:`PERIOD_RECEIVED` and (seq, hash) of the
    log's head, read in one snapshot."""
    by_type: list[dict[str, set[str]]] = [{}, {}]
    for index, rows in enumerate((sent, received)):
        for message_id, record_type in rows:
            by_type[index].setdefault(record_type, set()).add(message_id)
    return PeriodAccount(
        sent={k: frozenset(v) for k, v in by_type[0].items()},
        received={k: frozenset(v) for k, v in by_type[1].items()},
        log_seq=int(head[0]) if head else 0,
        log_head=bytes(head[1]) if head else GENESIS_HASH,
    )


# ---------------------------------------------------------------------------- retention, log

PURGE_INBOX = "UPDATE inbox SET envelope = ?, purged_at = ? WHERE sender = ? AND message_id = ?"
PURGE_OUTBOX = "UPDATE outbox SET envelope = ?, purged_at = ? WHERE message_id = ?"
READ_LOG = f"SELECT {LOG_COLUMNS} FROM transfer_log WHERE seq > ? ORDER BY seq LIMIT ?"
