"""The Store operations, decided once for every engine.

Each method decides what it writes and which transfer-log events it appends
(:mod:`gateway.store.writes`, :mod:`gateway.store.events`) and runs that through
the engine's primitives (:class:`~gateway.store.engine.Engine`). What needs an
engine's own SQL stays in the engine: the due queue (PostgreSQL's claims and
leases) and retention's paging of stored envelopes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.checkpoint import PeriodAccount
from gateway.clock import utc_now
from gateway.store import events as log_events
from gateway.store import writes as w
from gateway.store.base import (
    InboundAcceptance,
    InboundRow,
    OutboundRow,
    OutboundState,
    StoredPayload,
)
from gateway.store.engine import Engine
from gateway.store.rows import inbound_row, log_entry, outbound_row
from gateway.translog import LogEntry, LogEvent

__all__ = ["SharedOperations"]


class SharedOperations(Engine):
    # -- outbound ------------------------------------------------------------

    async def enqueue_outbound(
        self, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        """Insert ``row``; if its idempotency key exists, return that row and False."""
        return (await self.enqueue_outbound_batch([(row, events)]))[0]

    async def enqueue_outbound_batch(
        self, items: Sequence[tuple[OutboundRow, Sequence[LogEvent]]]
    ) -> list[tuple[OutboundRow, bool]]:
        """One transaction for the batch (every new row or none); a known key logs nothing."""
        steps = [
            w.Step([(w.OUTBOX_INSERT, w.outbox_values(row, self.at_rest, self._times))], events)
            for row, events in items
        ]
        counts = await self._write(*steps)
        out = []
        for (row, _), count in zip(items, counts, strict=True):
            if count:
                out.append((row, True))
                continue
            stored = await self._rows(w.OUTBOUND_BY_IDEMPOTENCY_KEY, row.idempotency_key)
            out.append((outbound_row(stored[0], self.at_rest), False))
        return out

    async def get_outbound(self, message_id: str) -> OutboundRow | None:
        rows = await self._rows(w.GET_OUTBOUND, message_id)
        if not rows:
            return None
        return outbound_row(rows[0], self.at_rest, bytes(rows[0][12] or b""))

    async def find_outbound_by_key(
        self, record_type: str, record_key: str, receiver: str
    ) -> OutboundRow | None:
        statement = w.OUTBOUND_BY_KEY.format(order=self._order)
        rows = await self._rows(statement, record_type, record_key, receiver)
        return outbound_row(rows[0], self.at_rest) if rows else None

    async def outbound_in_state(self, state: OutboundState, limit: int) -> list[OutboundRow]:
        statement = w.OUTBOUND_IN_STATE.format(order=self._order)
        return [
            outbound_row(r, self.at_rest) for r in await self._rows(statement, state.value, limit)
        ]

    async def mark_delivered(
        self,
        message_id: str,
        receipt: bytes,
        events: Sequence[LogEvent],
        *,
        received_at: dt.datetime,
    ) -> None:
        """Store the partner's receipt; ``received_at`` is the partner's clock, from it."""
        text = self._times.text
        statements = w.delivered(
            message_id, receipt, text(utc_now()), text(received_at), self._release
        )
        await self._write(w.Step(statements, events))

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
        state = (final_state or OutboundState.PENDING).value
        due = self._times.due(next_attempt_at)
        params = (log_events.error_text(error), due, state, message_id, w.PENDING)
        await self._write(
            w.Step([(w.FAILED_ATTEMPT.format(release=self._release), params)], events)
        )

    async def redrive(
        self, message_id: str, events: Sequence[LogEvent], *, now: dt.datetime | None = None
    ) -> bool:
        """Back to pending, due at once, attempts reset, dead-letter age counted from now."""
        at = now or utc_now()
        params = (w.PENDING, self._times.due(at), self._times.text(at), message_id, w.DEAD_LETTERED)
        statement = w.REDRIVE.format(release=self._release)
        return bool((await self._write(w.Step([(statement, params)], events)))[0])

    async def replace_envelope(
        self, message_id: str, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        sealed = self.at_rest.seal_outbound(message_id, envelope)
        step = w.Step([(w.REPLACE_ENVELOPE, (sealed, message_id))], events, always=True)
        await self._write(step)

    async def dead_letter_expired(self, receiver: str, created_before: dt.datetime) -> list[str]:
        """Dead-letter pending messages whose age clock started before the cutoff."""
        statement = w.EXPIRED.format(order=self._order)
        cutoff = self._times.text(created_before)
        found = await self._rows(statement, receiver, w.PENDING, cutoff)
        if not found:
            return []
        dead_letter = w.DEAD_LETTER.format(release=self._release)
        steps = [
            w.Step(
                [(dead_letter, (w.DEAD_LETTERED, message_id, w.PENDING, attempts))],
                [log_events.dead_lettered(receiver, message_id, record_type, attempts, error)],
            )
            for message_id, record_type, attempts, error in found
        ]
        counts = await self._write(*steps)
        return [r[0] for r, count in zip(found, counts, strict=True) if count]

    # -- inbound -------------------------------------------------------------

    async def accept_inbound(
        self, row: InboundRow, events: Sequence[LogEvent], duplicate_events: Sequence[LogEvent]
    ) -> InboundAcceptance:
        """Insert unless (sender, message id) exists; log ``events`` or ``duplicate_events``."""
        values = w.inbox_values(row, self.at_rest, self._times)
        step = w.Step([(w.INBOX_INSERT_NEW, values)], events, otherwise=duplicate_events)
        created = bool((await self._write(step))[0])
        # The engine assigned seq in commit order (under its write lock); read it back.
        stored = await self._rows(w.GET_INBOUND, row.sender, row.message_id)
        if created:
            return InboundAcceptance(replace(row, seq=int(stored[0][0])), created=True)
        receipt = await self._rows(w.RECEIPT_OF, self.bureau, row.message_id)
        stored_row = inbound_row(stored[0], self.at_rest, bytes(receipt[0][0]) if receipt else b"")
        return InboundAcceptance(stored_row, created=False)

    async def acknowledge_inbound(self, message_ids: Sequence[str]) -> int:
        """Mark delivered to the local system, logging one event per newly acknowledged id."""
        if not message_ids:
            return 0
        statement = w.UNDELIVERED_IDS.format(ids=",".join("?" * len(message_ids)))
        earliest: dict[str, tuple[str, str]] = {}
        for sender, message_id, record_type in await self._rows(statement, *message_ids):
            earliest.setdefault(message_id, (sender, record_type))
        now = self._times.text(utc_now())
        steps = [
            w.Step(
                [(w.ACKNOWLEDGE, (now, sender, message_id))],
                [log_events.delivered_to_local(sender, message_id, record_type)],
            )
            for message_id in dict.fromkeys(message_ids)
            if message_id in earliest
            for sender, record_type in [earliest[message_id]]
        ]
        return sum(await self._write(*steps)) if steps else 0

    async def period_account(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> PeriodAccount:
        """Ids delivered to and received from ``peer`` whose receiver-side time is in
        [start, end), and the transfer-log head, in one snapshot."""
        span = (peer, self._times.text(start), self._times.text(end))
        sent, received, head = await self._snapshot(
            (w.PERIOD_SENT, span), (w.PERIOD_RECEIVED, span), (w.LOG_HEAD, ())
        )
        return w.period_account(sent, received, head[0] if head else None)

    async def store_issued_receipt(
        self, sender: str, message_id: str, receipt: bytes, events: Sequence[LogEvent]
    ) -> None:
        """Keep the first receipt issued for a message (a repeat logs nothing)."""
        now = self._times.text(utc_now())
        params = (self.bureau, message_id, receipt, now)
        await self._write(w.Step([(w.RECEIPT_ISSUED, params)], events))

    async def undelivered_inbound(
        self, after_seq: int, limit: int, record_types: Sequence[str] = ()
    ) -> list[InboundRow]:
        statement, params = w.undelivered(after_seq, limit, record_types)
        return [inbound_row(r, self.at_rest) for r in await self._rows(statement, *params)]

    async def find_inbound_by_key(self, record_type: str, record_key: str) -> InboundRow | None:
        rows = await self._rows(w.INBOUND_BY_KEY, record_type, record_key)
        return inbound_row(rows[0], self.at_rest) if rows else None

    async def get_inbound(self, sender: str, message_id: str) -> InboundRow | None:
        rows = await self._rows(w.GET_INBOUND, sender, message_id)
        return inbound_row(rows[0], self.at_rest) if rows else None

    # -- retention and the log ----------------------------------------------

    async def purge_payload(
        self, item: StoredPayload, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        """Replace a stored envelope by its anonymised form and mark it purged."""
        now = self._times.text(utc_now())
        statement: tuple[str, Sequence[Any]]
        if item.direction == "inbound":
            sealed = self.at_rest.seal_inbound(item.sender, item.message_id, envelope)
            statement = (w.PURGE_INBOX, (sealed, now, item.sender, item.message_id))
        else:
            sealed = self.at_rest.seal_outbound(item.message_id, envelope)
            statement = (w.PURGE_OUTBOX, (sealed, now, item.message_id))
        await self._write(w.Step([statement], events, always=True))

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        await self._write(w.Step([], events, always=True))

    async def read_log(self, after_seq: int, limit: int) -> list[LogEntry]:
        return [log_entry(r) for r in await self._rows(w.READ_LOG, after_seq, limit)]
