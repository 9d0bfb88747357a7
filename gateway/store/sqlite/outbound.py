"""The SQLite outbox: queueing, claiming due messages, outcomes, dead letters, re-drive."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

from gateway.clock import iso_utc, utc_now
from gateway.store import events as log_events
from gateway.store.base import OutboundRow, OutboundState
from gateway.store.rows import OUTBOX_COLUMNS, outbound_row
from gateway.store.sqlite.core import SqliteCore, receipt_of
from gateway.store.sqlite.worker import LogAppender
from gateway.translog import LogEvent

__all__ = ["SqliteOutbound"]


class SqliteOutbound(SqliteCore):
    def _insert_outbound(
        self,
        conn: sqlite3.Connection,
        log: LogAppender,
        row: OutboundRow,
        events: Sequence[LogEvent],
    ) -> tuple[OutboundRow, bool]:
        if row.idempotency_key:
            existing = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = ?",
                (row.idempotency_key,),
            ).fetchone()
            if existing is not None:
                return outbound_row(existing, self.at_rest), False
        conn.execute(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}, age_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.message_id,
                row.receiver,
                row.record_type,
                row.record_key,
                row.correlation_id,
                row.idempotency_key or None,
                self.at_rest.seal_outbound(row.message_id, row.envelope),
                iso_utc(row.created_at),
                row.state.value,
                row.attempts,
                row.next_attempt_at.timestamp(),
                row.last_error,
                iso_utc(row.created_at),
            ),
        )
        log.append(conn, events)
        return row, True

    async def enqueue_outbound(
        self, row: OutboundRow, events: Sequence[LogEvent]
    ) -> tuple[OutboundRow, bool]:
        def job(conn: sqlite3.Connection, log: LogAppender) -> tuple[OutboundRow, bool]:
            return self._insert_outbound(conn, log, row, events)

        result: tuple[OutboundRow, bool] = await self._writer.submit(job)
        return result

    async def enqueue_outbound_batch(
        self, items: Sequence[tuple[OutboundRow, Sequence[LogEvent]]]
    ) -> list[tuple[OutboundRow, bool]]:
        # One job is one savepoint: a failing row rolls back the rows before it too.
        def job(conn: sqlite3.Connection, log: LogAppender) -> list[tuple[OutboundRow, bool]]:
            return [self._insert_outbound(conn, log, row, events) for row, events in items]

        result: list[tuple[OutboundRow, bool]] = await self._writer.submit(job)
        return result

    async def due_outbound(self, receiver: str, now: dt.datetime, limit: int) -> list[OutboundRow]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[OutboundRow]:
            # Feedback never overtakes earlier feedback on the same record: a message waits
            # while an older one with the same correlation id is still pending.
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE receiver = ? AND state = ? "
                "AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox AS earlier "
                "WHERE earlier.correlation_id = outbox.correlation_id "
                "AND outbox.correlation_id != '' AND earlier.state = outbox.state "
                "AND earlier.rowid < outbox.rowid) "
                "ORDER BY next_attempt_at, rowid LIMIT ?",
                (receiver, OutboundState.PENDING.value, now.timestamp(), limit),
            ).fetchall()
            return [outbound_row(r, self.at_rest) for r in rows]

        result: list[OutboundRow] = await self._reader.submit(job)
        return result

    async def next_due_at(self, receiver: str) -> dt.datetime | None:
        def job(conn: sqlite3.Connection, _: LogAppender) -> dt.datetime | None:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE receiver = ? AND state = ?",
                (receiver, OutboundState.PENDING.value),
            ).fetchone()
            return None if row[0] is None else dt.datetime.fromtimestamp(row[0], dt.UTC)

        result: dt.datetime | None = await self._reader.submit(job)
        return result

    async def get_outbound(self, message_id: str) -> OutboundRow | None:
        def job(conn: sqlite3.Connection, _: LogAppender) -> OutboundRow | None:
            row = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return None
            return outbound_row(row, self.at_rest, receipt_of(conn, row[1], message_id))

        result: OutboundRow | None = await self._reader.submit(job)
        return result

    async def find_outbound_by_key(
        self, record_type: str, record_key: str, receiver: str
    ) -> OutboundRow | None:
        def job(conn: sqlite3.Connection, _: LogAppender) -> OutboundRow | None:
            row = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE record_type = ? AND record_key = ? "
                "AND receiver = ? ORDER BY rowid DESC LIMIT 1",
                (record_type, record_key, receiver),
            ).fetchone()
            return None if row is None else outbound_row(row, self.at_rest)

        result: OutboundRow | None = await self._reader.submit(job)
        return result

    async def mark_delivered(
        self,
        message_id: str,
        receipt: bytes,
        events: Sequence[LogEvent],
        *,
        received_at: dt.datetime,
    ) -> None:
        def job(conn: sqlite3.Connection, log: LogAppender) -> None:
            row = conn.execute(
                "SELECT receiver, state FROM outbox WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is None or row[1] == OutboundState.DELIVERED.value:
                return
            now = iso_utc(utc_now())
            conn.execute(
                "UPDATE outbox SET state = ?, delivered_at = ?, attempts = attempts + 1, "
                "last_error = '', receipt_received_at = ? WHERE message_id = ?",
                (OutboundState.DELIVERED.value, now, iso_utc(received_at), message_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO receipts VALUES (?,?,?,?,?)",
                (row[0], message_id, "received", receipt, now),
            )
            log.append(conn, events)

        await self._writer.submit(job)

    async def mark_failed_attempt(
        self,
        message_id: str,
        *,
        error: str,
        next_attempt_at: dt.datetime,
        final_state: OutboundState | None,
        events: Sequence[LogEvent],
    ) -> None:
        def job(conn: sqlite3.Connection, log: LogAppender) -> None:
            state = (final_state or OutboundState.PENDING).value
            cursor = conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
                "state = ? WHERE message_id = ? AND state = ?",
                (
                    log_events.error_text(error),
                    next_attempt_at.timestamp(),
                    state,
                    message_id,
                    OutboundState.PENDING.value,
                ),
            )
            if cursor.rowcount:
                log.append(conn, events)

        await self._writer.submit(job)

    async def redrive(
        self, message_id: str, events: Sequence[LogEvent], *, now: dt.datetime | None = None
    ) -> bool:
        at = now or utc_now()

        def job(conn: sqlite3.Connection, log: LogAppender) -> bool:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, attempts = 0, age_from = ? "
                "WHERE message_id = ? AND state = ?",
                (
                    OutboundState.PENDING.value,
                    at.timestamp(),
                    iso_utc(at),
                    message_id,
                    OutboundState.DEAD_LETTERED.value,
                ),
            )
            if cursor.rowcount:
                log.append(conn, events)
            return bool(cursor.rowcount)

        result: bool = await self._writer.submit(job)
        return result

    async def dead_letter_expired(self, receiver: str, created_before: dt.datetime) -> list[str]:
        def job(conn: sqlite3.Connection, log: LogAppender) -> list[str]:
            rows = conn.execute(
                "SELECT message_id, record_type, attempts, last_error FROM outbox "
                "WHERE receiver = ? AND state = ? AND age_from < ? ORDER BY rowid",
                (receiver, OutboundState.PENDING.value, iso_utc(created_before)),
            ).fetchall()
            for message_id, record_type, attempts, last_error in rows:
                conn.execute(
                    "UPDATE outbox SET state = ? WHERE message_id = ?",
                    (OutboundState.DEAD_LETTERED.value, message_id),
                )
                log.append(
                    conn,
                    [
                        log_events.dead_lettered(
                            receiver, message_id, record_type, attempts, last_error
                        )
                    ],
                )
            return [r[0] for r in rows]

        result: list[str] = await self._writer.submit(job)
        return result

    async def outbound_in_state(self, state: OutboundState, limit: int) -> list[OutboundRow]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[OutboundRow]:
            rows = conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY rowid LIMIT ?",
                (state.value, limit),
            ).fetchall()
            return [outbound_row(r, self.at_rest) for r in rows]

        result: list[OutboundRow] = await self._reader.submit(job)
        return result

    async def replace_envelope(
        self, message_id: str, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        def job(conn: sqlite3.Connection, log: LogAppender) -> None:
            conn.execute(
                "UPDATE outbox SET envelope = ? WHERE message_id = ?",
                (self.at_rest.seal_outbound(message_id, envelope), message_id),
            )
            log.append(conn, events)

        await self._writer.submit(job)
