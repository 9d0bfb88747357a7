"""The storage interface every engine implements (SQLite now, PostgreSQL next).

Each mutating method is one atomic unit: its rows and its transfer-log events
commit together or not at all, and the method returns only after the commit is
durable. Engines translate their driver's exceptions into
:class:`~gateway.errors.StoreUnavailable` (``raise … from exc``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.checkpoint import PeriodAccount
from gateway.translog import LogEntry, LogEvent

__all__ = [
    "InboundAcceptance",
    "InboundRow",
    "OutboundRow",
    "OutboundState",
    "Store",
    "StoredPayload",
]


class OutboundState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class OutboundRow:
    message_id: str
    receiver: str
    record_type: str
    record_key: str
    correlation_id: str
    envelope: bytes  # serialised chuanyu.exchange.v1.Envelope, as last sealed
    created_at: dt.datetime
    state: OutboundState
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str = ""
    receipt: bytes = b""  # the peer's signed receipt, once delivered
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class InboundRow:
    sender: str
    message_id: str
    record_type: str
    record_key: str
    correlation_id: str
    envelope: bytes  # serialised Envelope exactly as received
    header_sha256: bytes
    payload_sha256: bytes
    received_at: dt.datetime
    seq: int = 0  # arrival order, assigned by the store
    receipt: bytes = b""  # the receipt we issued
    delivered_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """A stored envelope not yet purged, for the retention job."""

    direction: str  # "outbound" or "inbound"
    sender: str
    message_id: str
    stored_at: dt.datetime
    envelope: bytes


@dataclass(frozen=True, slots=True)
class InboundAcceptance:
    """Result of offering an inbound envelope to the store."""

    row: InboundRow
    created: bool  # False: (sender, message id) was already there


class Store(Protocol):
    """Durable outbox, inbox, receipts and hash-chained transfer log of one node."""

    async def open(self) -> None: ...

    @property
    def available(self) -> bool:
        """False while commits fail (disk full, file unwritable, locked)."""

    @property
    def last_error(self) -> str: ...

    async def probe(self) -> None:
        """Commit something small; raise ``StoreUnavailable`` if the store cannot write."""

    async def close(self) -> None: ...

    # -- outbound ------------------------------------------------------------
    async def enqueue_outbound(
        self, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        """Insert ``row``; if its idempotency key exists, return that row and False."""

    async def enqueue_outbound_batch(
        self, items: Sequence[tuple[OutboundRow, Sequence[LogEvent]]]
    ) -> list[tuple[OutboundRow, bool]]:
        """Queue a whole batch in one transaction: each row with its events, in order.

        A row whose idempotency key is already queued is not inserted and logs nothing; its
        stored row comes back with False. Either every new row commits or none does.
        """

    async def due_outbound(
        self, receiver: str, now: dt.datetime, limit: int
    ) -> list[OutboundRow]: ...

    async def next_due_at(self, receiver: str) -> dt.datetime | None: ...

    async def get_outbound(self, message_id: str) -> OutboundRow | None: ...

    async def mark_delivered(
        self,
        message_id: str,
        receipt: bytes,
        events: Sequence[LogEvent],
        *,
        received_at: dt.datetime,
    ) -> None:
        """Store the partner's receipt; ``received_at`` is the partner's clock, from it."""

    async def mark_failed_attempt(
        self,
        message_id: str,
        *,
        error: str,
        next_attempt_at: dt.datetime,
        final_state: OutboundState | None,
        events: Sequence[LogEvent],
    ) -> None:
        """Count an attempt; with ``final_state`` the message leaves the pending queue."""

    async def redrive(
        self, message_id: str, events: Sequence[LogEvent], *, now: dt.datetime | None = None
    ) -> bool:
        """Put a dead-lettered message back in the queue, due at once, with its attempts
        reset and its dead-letter age clock restarted at ``now`` (default: the current
        time), so :meth:`dead_letter_expired` counts its age from the re-drive, not from its
        creation. False if it is not dead-lettered."""

    async def dead_letter_expired(self, receiver: str, created_before: dt.datetime) -> list[str]:
        """Dead-letter pending messages whose age clock (creation, or the last re-drive)
        started before the cutoff; returns their ids."""

    async def outbound_in_state(self, state: OutboundState, limit: int) -> list[OutboundRow]: ...

    async def replace_envelope(
        self, message_id: str, envelope: bytes, events: Sequence[LogEvent]
    ) -> None: ...

    # -- inbound -------------------------------------------------------------
    async def accept_inbound(
        self, row: InboundRow, events: Sequence[LogEvent], duplicate_events: Sequence[LogEvent]
    ) -> InboundAcceptance:
        """Insert unless (sender, message id) exists; log ``events`` or ``duplicate_events``."""

    async def store_issued_receipt(
        self, sender: str, message_id: str, receipt: bytes, events: Sequence[LogEvent]
    ) -> None: ...

    async def undelivered_inbound(
        self, after_seq: int, limit: int, record_types: Sequence[str] = ()
    ) -> list[InboundRow]: ...

    async def acknowledge_inbound(self, message_ids: Sequence[str]) -> int:
        """Mark delivered to the local system, logging one event per newly acknowledged id."""

    async def find_inbound_by_key(self, record_type: str, record_key: str) -> InboundRow | None: ...

    async def get_inbound(self, sender: str, message_id: str) -> InboundRow | None:
        """The inbox entry of (sender, message id), if there is one."""

    async def find_outbound_by_key(
        self, record_type: str, record_key: str, receiver: str
    ) -> OutboundRow | None: ...

    # -- reconciliation ----------------------------------------------------------
    async def period_account(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> PeriodAccount:
        """Ids delivered to and received from ``peer`` whose receiver-side time is in
        [start, end), and the transfer-log head."""

    # -- retention -------------------------------------------------------------
    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        """Stored envelopes older than the cutoff and not purged, in a stable order after
        ``after`` = (direction, sender, message id)."""

    async def purge_payload(
        self, item: StoredPayload, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        """Replace a stored envelope by its anonymised form and mark it purged."""

    # -- transfer log --------------------------------------------------------
    async def append_log(self, events: Sequence[LogEvent]) -> None: ...

    async def read_log(self, after_seq: int, limit: int) -> list[LogEntry]: ...
