"""The PostgreSQL outbox: queueing, claims with leases, outcomes, dead letters, re-drive.

``due_outbound`` hands rows to one replica at a time: it locks the due rows with
``FOR UPDATE SKIP LOCKED`` and stamps them with a lease (``claimed_by``,
``claimed_until``, on the database clock). Another replica skips a row while its
lease runs; a replica that crashed releases its rows when the lease expires.
Delivering, failing, dead-lettering or re-driving a row ends its claim.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.clock import utc_now
from gateway.errors import StoreUnavailable
from gateway.store import events as log_events
from gateway.store.base import OutboundRow, OutboundState
from gateway.store.postgres.connection import DRIVER_ERRORS, Chain, unavailable, updated
from gateway.store.postgres.core import PostgresCore
from gateway.store.rows import OUTBOX_COLUMNS, OUTBOX_FIELDS, outbound_row
from gateway.translog import LogEvent

if TYPE_CHECKING:
    from gateway.store.postgres.schema import Conn

__all__ = ["PostgresOutbound"]

_O_COLUMNS = ", ".join(f"o.{name}" for name in OUTBOX_FIELDS)
_PENDING = OutboundState.PENDING.value

# Feedback never overtakes earlier feedback on the same record: a message waits while an
# older one with the same correlation id is still pending (whoever holds its claim).
_CLAIM = f"""
WITH due AS (
    SELECT o.message_id FROM outbox AS o
    WHERE o.receiver = $1 AND o.state = $2 AND o.next_attempt_at <= $3
      AND (o.claimed_until IS NULL OR o.claimed_until <= clock_timestamp() OR o.claimed_by = $5)
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS earlier
          WHERE earlier.correlation_id = o.correlation_id AND o.correlation_id <> ''
            AND earlier.state = o.state AND earlier.ord < o.ord)
    ORDER BY o.next_attempt_at, o.ord
    LIMIT $4
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox AS o
SET claimed_by = $5, claimed_until = clock_timestamp() + make_interval(secs => $6)
FROM due WHERE o.message_id = due.message_id
RETURNING {_O_COLUMNS}, o.ord
"""


class PostgresOutbound(PostgresCore):
    async def _insert_outbound(
        self, conn: Conn, chain: Chain, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        if row.idempotency_key:
            existing = await conn.fetchrow(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = $1",
                row.idempotency_key,
            )
            if existing is not None:
                return outbound_row(existing, self.at_rest), False
        await conn.execute(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}, age_from) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$8)",
            row.message_id,
            row.receiver,
            row.record_type,
            row.record_key,
            row.correlation_id,
            row.idempotency_key or None,
            self.at_rest.seal_outbound(row.message_id, row.envelope),
            row.created_at,
            row.state.value,
            row.attempts,
            row.next_attempt_at,
            log_events.error_text(row.last_error),
        )
        chain.append(events)
        return row, True

    async def enqueue_outbound(
        self, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        async def job(conn: Conn, chain: Chain) -> tuple[OutboundRow, bool]:
            return await self._insert_outbound(conn, chain, row, events)

        result: tuple[OutboundRow, bool] = await self._submit(job)
        return result

    async def enqueue_outbound_batch(
        self, items: Sequence[tuple[OutboundRow, Sequence[LogEvent]]]
    ) -> list[tuple[OutboundRow, bool]]:
        # One job runs in one savepoint: a failing row rolls back the rows before it too.
        async def job(conn: Conn, chain: Chain) -> list[tuple[OutboundRow, bool]]:
            return [await self._insert_outbound(conn, chain, row, ev) for row, ev in items]

        result: list[tuple[OutboundRow, bool]] = await self._submit(job)
        return result

    async def due_outbound(self, receiver: str, now: dt.datetime, limit: int) -> list[OutboundRow]:
        """Claim up to ``limit`` due rows for this replica (a lease of ``lease_seconds``)."""
        if self._pool is None:
            raise StoreUnavailable(f"the node store (schema {self.schema}) is closed")
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _CLAIM, receiver, _PENDING, now, limit, self.replica_id, self.lease_seconds
                )
        except DRIVER_ERRORS as exc:
            self._note(exc)
            raise unavailable(exc, "node database cannot claim due messages") from exc
        # Availability comes back with a committed write batch (probe), not with a claim.
        rows = sorted(rows, key=lambda r: (r["next_attempt_at"], r["ord"]))
        return [outbound_row(r, self.at_rest) for r in rows]

    async def next_due_at(self, receiver: str) -> dt.datetime | None:
        async def read(conn: Conn) -> dt.datetime | None:
            # A row another replica holds is due, for us, when its lease ends.
            value: dt.datetime | None = await conn.fetchval(
                "SELECT MIN(CASE WHEN claimed_by IS DISTINCT FROM $3 "
                "AND claimed_until > clock_timestamp() "
                "THEN GREATEST(next_attempt_at, claimed_until) ELSE next_attempt_at END) "
                "FROM outbox WHERE receiver = $1 AND state = $2",
                receiver,
                _PENDING,
                self.replica_id,
            )
            return value

        return await self._read(read)

    async def get_outbound(self, message_id: str) -> OutboundRow | None:
        async def read(conn: Conn) -> OutboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {_O_COLUMNS}, r.receipt FROM outbox AS o LEFT JOIN receipts AS r "
                "ON r.issuer = o.receiver AND r.message_id = o.message_id "
                "WHERE o.message_id = $1",
                message_id,
            )
            if row is None:
                return None
            receipt = row["receipt"]
            return outbound_row(row, self.at_rest, b"" if receipt is None else bytes(receipt))

        return await self._read(read)

    async def find_outbound_by_key(
        self, record_type: str, record_key: str, receiver: str
    ) -> OutboundRow | None:
        async def read(conn: Conn) -> OutboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE record_type = $1 "
                "AND record_key = $2 AND receiver = $3 ORDER BY ord DESC LIMIT 1",
                record_type,
                record_key,
                receiver,
            )
            return None if row is None else outbound_row(row, self.at_rest)

        return await self._read(read)

    async def mark_delivered(
        self,
        message_id: str,
        receipt: bytes,
        events: Sequence[LogEvent],
        *,
        received_at: dt.datetime,
    ) -> None:
        async def job(conn: Conn, chain: Chain) -> None:
            row = await conn.fetchrow(
                "SELECT receiver, state FROM outbox WHERE message_id = $1", message_id
            )
            if row is None or row["state"] == OutboundState.DELIVERED.value:
                return
            now = utc_now()
            await conn.execute(
                "UPDATE outbox SET state = $1, delivered_at = $2, attempts = attempts + 1, "
                "last_error = '', receipt_received_at = $3, claimed_by = NULL, "
                "claimed_until = NULL WHERE message_id = $4",
                OutboundState.DELIVERED.value,
                now,
                received_at,
                message_id,
            )
            await conn.execute(
                "INSERT INTO receipts VALUES ($1,$2,'received',$3,$4) "
                "ON CONFLICT (issuer, message_id) DO UPDATE SET direction = EXCLUDED.direction, "
                "receipt = EXCLUDED.receipt, stored_at = EXCLUDED.stored_at",
                row["receiver"],
                message_id,
                receipt,
                now,
            )
            chain.append(events)

        await self._submit(job)

    async def mark_failed_attempt(
        self,
        message_id: str,
        *,
        error: str,
        next_attempt_at: dt.datetime,
        final_state: OutboundState | None,
        events: Sequence[LogEvent],
    ) -> None:
        async def job(conn: Conn, chain: Chain) -> None:
            status = await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, "
                "next_attempt_at = $2, state = $3, claimed_by = NULL, claimed_until = NULL "
                "WHERE message_id = $4 AND state = $5",
                log_events.error_text(error),
                next_attempt_at,
                (final_state or OutboundState.PENDING).value,
                message_id,
                _PENDING,
            )
            if updated(status):
                chain.append(events)

        await self._submit(job)

    async def redrive(
        self, message_id: str, events: Sequence[LogEvent], *, now: dt.datetime | None = None
    ) -> bool:
        at = now or utc_now()

        async def job(conn: Conn, chain: Chain) -> bool:
            status = await conn.execute(
                "UPDATE outbox SET state = $1, next_attempt_at = $2, attempts = 0, age_from = $2, "
                "claimed_by = NULL, claimed_until = NULL WHERE message_id = $3 AND state = $4",
                _PENDING,
                at,
                message_id,
                OutboundState.DEAD_LETTERED.value,
            )
            if updated(status):
                chain.append(events)
            return bool(updated(status))

        result: bool = await self._submit(job)
        return result

    async def dead_letter_expired(self, receiver: str, created_before: dt.datetime) -> list[str]:
        async def job(conn: Conn, chain: Chain) -> list[str]:
            rows = await conn.fetch(
                "UPDATE outbox SET state = $1, claimed_by = NULL, claimed_until = NULL "
                "WHERE receiver = $2 AND state = $3 AND age_from < $4 "
                "RETURNING ord, message_id, record_type, attempts, last_error",
                OutboundState.DEAD_LETTERED.value,
                receiver,
                _PENDING,
                created_before,
            )
            rows = sorted(rows, key=lambda r: r["ord"])
            for r in rows:
                chain.append(
                    [
                        log_events.dead_lettered(
                            receiver,
                            r["message_id"],
                            r["record_type"],
                            r["attempts"],
                            r["last_error"],
                        )
                    ]
                )
            return [r["message_id"] for r in rows]

        result: list[str] = await self._submit(job)
        return result

    async def outbound_in_state(self, state: OutboundState, limit: int) -> list[OutboundRow]:
        async def read(conn: Conn) -> list[OutboundRow]:
            rows = await conn.fetch(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = $1 ORDER BY ord LIMIT $2",
                state.value,
                limit,
            )
            return [outbound_row(r, self.at_rest) for r in rows]

        return await self._read(read)

    async def replace_envelope(
        self, message_id: str, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: Conn, chain: Chain) -> None:
            await conn.execute(
                "UPDATE outbox SET envelope = $1 WHERE message_id = $2",
                self.at_rest.seal_outbound(message_id, envelope),
                message_id,
            )
            chain.append(events)

        await self._submit(job)
