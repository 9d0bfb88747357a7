"""The PostgreSQL inbox, reconciliation, retention and the transfer log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from gateway.checkpoint import PeriodAccount
from gateway.clock import utc_now
from gateway.store import events as log_events
from gateway.store.base import InboundAcceptance, InboundRow, StoredPayload
from gateway.store.postgres.connection import Chain, updated
from gateway.store.postgres.core import PostgresCore
from gateway.store.rows import INBOX_COLUMNS, LOG_COLUMNS, inbound_row, log_entry, stored_payload
from gateway.translog import GENESIS_HASH, LogEntry, LogEvent

if TYPE_CHECKING:
    from gateway.store.postgres.schema import Conn

__all__ = ["PostgresInbound"]


async def receipt_of(conn: Conn, issuer: str, message_id: str) -> bytes:
    value = await conn.fetchval(
        "SELECT receipt FROM receipts WHERE issuer = $1 AND message_id = $2", issuer, message_id
    )
    return b"" if value is None else bytes(value)


class PostgresInbound(PostgresCore):
    async def accept_inbound(
        self, row: InboundRow, events: Sequence[LogEvent], duplicate_events: Sequence[LogEvent]
    ) -> InboundAcceptance:
        async def job(conn: Conn, chain: Chain) -> InboundAcceptance:
            existing = await conn.fetchrow(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE sender = $1 AND message_id = $2",
                row.sender,
                row.message_id,
            )
            if existing is not None:
                chain.append(duplicate_events)
                receipt = await receipt_of(conn, self.bureau, row.message_id)
                return InboundAcceptance(
                    inbound_row(existing, self.at_rest, receipt), created=False
                )
            # Inserted under the head lock: seq grows in commit order across replicas,
            # so a reader paging by seq never skips a row that commits later.
            seq = await conn.fetchval(
                "INSERT INTO inbox (sender, message_id, record_type, record_key, correlation_id, "
                "envelope, header_sha256, payload_sha256, received_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING seq",
                row.sender,
                row.message_id,
                row.record_type,
                row.record_key,
                row.correlation_id,
                self.at_rest.seal_inbound(row.sender, row.message_id, row.envelope),
                row.header_sha256,
                row.payload_sha256,
                row.received_at,
            )
            chain.append(events)
            return InboundAcceptance(replace(row, seq=int(seq)), created=True)

        result: InboundAcceptance = await self._submit(job)
        return result

    async def store_issued_receipt(
        self, sender: str, message_id: str, receipt: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: Conn, chain: Chain) -> None:
            status = await conn.execute(
                "INSERT INTO receipts VALUES ($1,$2,'issued',$3,$4) ON CONFLICT DO NOTHING",
                self.bureau,
                message_id,
                receipt,
                utc_now(),
            )
            if updated(status):
                chain.append(events)

        await self._submit(job)

    async def undelivered_inbound(
        self, after_seq: int, limit: int, record_types: Sequence[str] = ()
    ) -> list[InboundRow]:
        async def read(conn: Conn) -> list[InboundRow]:
            if record_types:
                rows = await conn.fetch(
                    f"SELECT {INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > $1 "
                    "AND record_type = ANY($3::text[]) ORDER BY seq LIMIT $2",
                    after_seq,
                    limit,
                    list(record_types),
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {INBOX_COLUMNS} FROM inbox WHERE delivered_at IS NULL AND seq > $1 "
                    "ORDER BY seq LIMIT $2",
                    after_seq,
                    limit,
                )
            return [inbound_row(r, self.at_rest) for r in rows]

        return await self._read(read)

    async def acknowledge_inbound(self, message_ids: Sequence[str]) -> int:
        async def job(conn: Conn, chain: Chain) -> int:
            if not message_ids:
                return 0
            # One undelivered row per id (the earliest), as the SQLite engine does.
            rows = await conn.fetch(
                "WITH wanted AS (SELECT DISTINCT ON (i.message_id) i.sender, i.message_id "
                "FROM inbox AS i WHERE i.message_id = ANY($2::text[]) AND i.delivered_at IS NULL "
                "ORDER BY i.message_id, i.seq) "
                "UPDATE inbox SET delivered_at = $1 FROM wanted "
                "WHERE inbox.sender = wanted.sender AND inbox.message_id = wanted.message_id "
                "RETURNING inbox.sender, inbox.message_id, inbox.record_type",
                utc_now(),
                list(message_ids),
            )
            position = {m: i for i, m in reversed(list(enumerate(message_ids)))}
            for r in sorted(rows, key=lambda r: position[r["message_id"]]):
                chain.append(
                    [log_events.delivered_to_local(r["sender"], r["message_id"], r["record_type"])]
                )
            return len(rows)

        result: int = await self._submit(job)
        return result

    async def find_inbound_by_key(self, record_type: str, record_key: str) -> InboundRow | None:
        async def read(conn: Conn) -> InboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE record_type = $1 AND record_key = $2 "
                "ORDER BY seq DESC LIMIT 1",
                record_type,
                record_key,
            )
            return None if row is None else inbound_row(row, self.at_rest)

        return await self._read(read)

    async def get_inbound(self, sender: str, message_id: str) -> InboundRow | None:
        async def read(conn: Conn) -> InboundRow | None:
            row = await conn.fetchrow(
                f"SELECT {INBOX_COLUMNS} FROM inbox WHERE sender = $1 AND message_id = $2",
                sender,
                message_id,
            )
            return None if row is None else inbound_row(row, self.at_rest)

        return await self._read(read)

    # -- reconciliation ----------------------------------------------------------

    async def period_account(
        self, peer: str, start: dt.datetime, end: dt.datetime
    ) -> PeriodAccount:
        async def read(conn: Conn) -> PeriodAccount:
            # One snapshot for the three reads, so the head matches the ids.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                sent: dict[str, set[str]] = {}
                for r in await conn.fetch(
                    "SELECT message_id, record_type FROM outbox WHERE receiver = $1 "
                    "AND receipt_received_at >= $2 AND receipt_received_at < $3",
                    peer,
                    start,
                    end,
                ):
                    sent.setdefault(r["record_type"], set()).add(r["message_id"])
                received: dict[str, set[str]] = {}
                for r in await conn.fetch(
                    "SELECT message_id, record_type FROM inbox WHERE sender = $1 "
                    "AND received_at >= $2 AND received_at < $3",
                    peer,
                    start,
                    end,
                ):
                    received.setdefault(r["record_type"], set()).add(r["message_id"])
                head = await conn.fetchrow("SELECT seq, hash FROM log_head WHERE id = 1")
            return PeriodAccount(
                sent={k: frozenset(v) for k, v in sent.items()},
                received={k: frozenset(v) for k, v in received.items()},
                log_seq=int(head["seq"]) if head else 0,
                log_head=bytes(head["hash"]) if head else GENESIS_HASH,
            )

        return await self._read(read)

    # -- retention -------------------------------------------------------------

    async def unpurged_payloads(
        self, stored_before: dt.datetime, after: tuple[str, str, str], limit: int
    ) -> list[StoredPayload]:
        async def read(conn: Conn) -> list[StoredPayload]:
            rows = await conn.fetch(
                "SELECT direction, sender, message_id, stored_at, envelope FROM ("
                "SELECT 'inbound' AS direction, sender, message_id, received_at AS stored_at, "
                "envelope FROM inbox WHERE purged_at IS NULL AND received_at < $1 "
                "UNION ALL SELECT 'outbound', $2::text, message_id, created_at, envelope "
                "FROM outbox WHERE purged_at IS NULL AND created_at < $1) AS stored "
                'WHERE (direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C") '
                "> ($3::text, $4::text, $5::text) "
                'ORDER BY direction COLLATE "C", sender COLLATE "C", message_id COLLATE "C" '
                "LIMIT $6",
                stored_before,
                self.bureau,
                after[0],
                after[1],
                after[2],
                limit,
            )
            return [stored_payload(r, self.at_rest) for r in rows]

        return await self._read(read)

    async def purge_payload(
        self, item: StoredPayload, envelope: bytes, events: Sequence[LogEvent]
    ) -> None:
        async def job(conn: Conn, chain: Chain) -> None:
            if item.direction == "inbound":
                await conn.execute(
                    "UPDATE inbox SET envelope = $1, purged_at = $2 "
                    "WHERE sender = $3 AND message_id = $4",
                    self.at_rest.seal_inbound(item.sender, item.message_id, envelope),
                    utc_now(),
                    item.sender,
                    item.message_id,
                )
            else:
                await conn.execute(
                    "UPDATE outbox SET envelope = $1, purged_at = $2 WHERE message_id = $3",
                    self.at_rest.seal_outbound(item.message_id, envelope),
                    utc_now(),
                    item.message_id,
                )
            chain.append(events)

        await self._submit(job)

    # -- transfer log --------------------------------------------------------

    async def append_log(self, events: Sequence[LogEvent]) -> None:
        async def job(_: Conn, chain: Chain) -> None:
            chain.append(events)

        await self._submit(job)

    async def read_log(self, after_seq: int, limit: int) -> list[LogEntry]:
        async def read(conn: Conn) -> list[LogEntry]:
            rows = await conn.fetch(
                f"SELECT {LOG_COLUMNS} FROM transfer_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                after_seq,
                limit,
            )
            return [log_entry(r) for r in rows]

        return await self._read(read)
