"""The SQLite inbox, reconciliation, retention and the transfer log."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.checkpoint import PeriodAccount
from gateway.clock import iso_utc, utc_now
from gateway.store import events as log_events
from gateway.store.base import InboundAcceptance, InboundRow, StoredPayload
from gateway.store.rows import INBOX_COLUMNS, LOG_COLUMNS, inbound_row, log_entry, stored_payload
from gateway.store.sqlite.core import SqliteCore, receipt_of
from gateway.store.sqlite.worker import LogAppender
from gateway.translog import GENESIS_HASH, LogEntry, LogEvent

__all__ = ["SqliteInbound"]


class SqliteInbound(SqliteCore):
    async def accept_inbound(
        self, row: InboundRow, events: Sequence[LogEvent], duplicate_events: Sequence[LogEvent]
    ) -> InboundAcceptance:
        def job(conn: sqlite3.Connection, log: LogAppender) -> InboundAcceptance:
            existing = conn.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE sender = ? AND message_id = ?",
                (row.sender, row.message_id),
            ).fetchone()
            if existing is not None:
                log.append(conn, duplicate_events)
                receipt = receipt_of(conn, self.bureau, row.message_id)
                return InboundAcceptance(
                    inbound_row(existing, self.at_rest, receipt), created=False
                )
            cursor = conn.execute(
                "INSERT INTO inbox (sender, message_id, record_type, record_key, correlation_id, "
                "envelope, header_sha256, payload_sha256, received_at) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    row.sender,
                    row.message_id,
                    row.record_type,
                    row.record_key,
                    row.correlation_id,
                    self.at_rest.seal_inbound(row.sender, row.message_id, row.envelope),
                    row.header_sha256,
                    row.payload_sha256,
                    iso_utc(row.received_at),
                ),
            )
            log.append(conn, events)
            return InboundAcceptance(replace(row, seq=int(cursor.lastrowid or 0)), created=True)

        result: InboundAcceptance = await self._writer.submit(job)
        return result

    async def store_issued_receipt(
        self, sender: str, message_id: str, receipt: bytes, events: Sequence[LogEvent]
    ) -> None:
        def job(conn: sqlite3.Connection, log: LogAppender) -> None:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO receipts VALUES (?,?,?,?,?)",
                (self.bureau, message_id, "issued", receipt, iso_utc(utc_now())),
            )
            if cursor.rowcount:
                log.append(conn, events)

        await self._writer.submit(job)

    async def undelivered_inbound(
        self, after_seq: int, limit: int, record_types: Sequence[str] = ()
    ) -> list[InboundRow]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[InboundRow]:
            sql = f"SELECT {INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > ?"
            params: list[Any] = [after_seq]
            if record_types:
                sql += f" AND record_type IN ({','.join('?' * len(record_types))})"
                params.extend(record_types)
            sql += " ORDER BY seq LIMIT ?"
            params.append(limit)
            return [inbound_row(r, self.at_rest) for r in conn.execute(sql, params).fetchall()]

        result: list[InboundRow] = await self._reader.submit(job)
        return result

    async def acknowledge_inbound(self, message_ids: Sequence[str]) -> int:
        def job(conn: sqlite3.Connection, log: LogAppender) -> int:
            now = iso_utc(utc_now())
            count = 0
            for message_id in message_ids:
                row = conn.execute(
                    "SELECT sender, record_type FROM inbox WHERE message_id = ? "
                    "AND delivered_at IS NULL",
                    (message_id,),
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "UPDATE inbox SET delivered_at = ? WHERE message_id = ? AND sender = ?",
                    (now, message_id, row[0]),
                )
                log.append(conn, [log_events.delivered_to_local(row[0], message_id, row[1])])
                count += 1
            return count

        result: int = await self._writer.submit(job)
        return result

    async def find_inbound_by_key(self, record_type: str, record_key: str) -> InboundRow | None:
        def job(conn: sqlite3.Connection, _: LogAppender) -> InboundRow | None:
            row = conn.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE record_type = ? AND record_key = ? "
                "ORDER BY seq DESC LIMIT 1",
                (record_type, record_key),
            ).fetchone()
            return None if row is None else inbound_row(row, self.at_rest)

        result: InboundRow | None = await self._reader.submit(job)
        return result

    async def get_inbound(self, sender: str, message_id: str) -> InboundRow | None:
        def job(conn: sqlite3.Connection, _: LogAppender) -> InboundRow | None:
            row = conn.execute(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE sender = ? AND message_id = ?",
                (sender, message_id),
            ).fetchone()
            return None if row is None else inbound_row(row, self.at_rest)

        result: InboundRow | None = await self._reader.submit(job)
        return result

    # -- reconciliation ----------------------------------------------------------

    async def period_account(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> PeriodAccount:
        def job(conn: sqlite3.Connection, _: LogAppender) -> PeriodAccount:
            span = (peer, iso_utc(start), iso_utc(end))
            sent: dict[str, set[str]] = {}
            for message_id, record_type in conn.execute(
                "SELECT message_id, record_type FROM outbox WHERE receiver = ? "
                "AND receipt_received_at >= ? AND receipt_received_at < ?",
                span,
            ):
                sent.setdefault(record_type, set()).add(message_id)
            received: dict[str, set[str]] = {}
            for message_id, record_type in conn.execute(
                "SELECT message_id, record_type FROM inbox WHERE sender = ? "
                "AND received_at >= ? AND received_at < ?",
                span,
            ):
                received.setdefault(record_type, set()).add(message_id)
            head = conn.execute(
                "SELECT seq, hash FROM transfer_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return PeriodAccount(
                sent={k: frozenset(v) for k, v in sent.items()},
                received={k: frozenset(v) for k, v in received.items()},
                log_seq=int(head[0]) if head else 0,
                log_head=bytes(head[1]) if head else GENESIS_HASH,
            )

        result: PeriodAccount = await self._reader.submit(job)
        return result

    # -- retention -------------------------------------------------------------

    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[StoredPayload]:
            rows = conn.execute(
                "SELECT direction, sender, message_id, stored_at, envelope FROM ("
                "SELECT 'inbound' AS direction, sender, message_id, received_at AS stored_at, "
                "envelope FROM inbox WHERE purged_at IS NULL AND received_at < :cutoff "
                "UNION ALL SELECT 'outbound', :me, message_id, created_at, envelope FROM outbox "
                "WHERE purged_at IS NULL AND created_at < :cutoff) "
                "WHERE (direction, sender, message_id) > (:d, :s, :m) "
                "ORDER BY direction, sender, message_id LIMIT :limit",
                {
                    "cutoff": iso_utc(stored_before),
                    "me": self.bureau,
                    "d": after[0],
                    "s": after[1],
                    "m": after[2],
                    "limit": limit,
                },
            ).fetchall()
            return [stored_payload(r, self.at_rest) for r in rows]

        result: list[StoredPayload] = await self._reader.submit(job)
        return result

    async def purge_payload(
        self, item: StoredPayload, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        def job(conn: sqlite3.Connection, log: LogAppender) -> None:
            now = iso_utc(utc_now())
            if item.direction == "inbound":
                conn.execute(
                    "UPDATE inbox SET envelope = ?, purged_at = ? "
                    "WHERE sender = ? AND message_id = ?",
                    (
                        self.at_rest.seal_inbound(item.sender, item.message_id, envelope),
                        now,
                        item.sender,
                        item.message_id,
                    ),
                )
            else:
                conn.execute(
                    "UPDATE outbox SET envelope = ?, purged_at = ? WHERE message_id = ?",
                    (self.at_rest.seal_outbound(item.message_id, envelope), now, item.message_id),
                )
            log.append(conn, events)

        await self._writer.submit(job)

    # -- transfer log --------------------------------------------------------

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        await self._writer.submit(lambda conn, log: log.append(conn, events))

    async def read_log(self, after_seq: int, limit: int) -> list[LogEntry]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[LogEntry]:
            rows = conn.execute(
                f"SELECT {LOG_COLUMNS} FROM transfer_log WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [log_entry(r) for r in rows]

        result: list[LogEntry] = await self._reader.submit(job)
        return result
