"""The console's read models and the operator records, on any :class:`~gateway.store.engine.Engine`.

Which statement each read runs, and how its rows become read models, is decided
here once; the engine only runs statements (reads beside its writer, writes
through it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.store import statements as sql
from gateway.store.engine import Engine
from gateway.store.reads import (
    InboundCount,
    LogRow,
    OperatorRow,
    OutboundCount,
    PeerBacklog,
    SessionRow,
    StoredMessage,
    TransferFilter,
    TransferPage,
    TransferRow,
)
from gateway.store.rows import log_row, stored_message, transfer_row
from gateway.store.writes import Step

__all__ = ["ConsoleViews", "OperatorTable"]


class ConsoleViews(Engine):
    """The parts of :class:`~gateway.store.reads.ConsoleReads` every engine spells alike."""

    async def list_transfers(self, f: TransferFilter) -> TransferPage:
        """One page, newest first; ``ValueError`` for a cursor this API did not hand out."""
        limit, queries = sql.transfer_queries(f, self._dialect)
        rows = [r for statement, params in queries for r in await self._rows(statement, *params)]
        return sql.page(rows, limit)

    async def throughput(self, now: dt.datetime, hours: int = 24) -> list[tuple[str, int, int]]:
        """(hour start, sent, received), oldest first. The first entry of the window is found
        by bisection on seq: the log is appended in time order, and an index on ``at`` would
        cost the writer on every entry."""
        start, buckets = sql.throughput_buckets(now, hours)
        last = int((await self._rows(sql.LOG_LAST))[0][0] or 0)
        lo, hi = 1, last + 1
        while lo < hi:
            mid = (lo + hi) // 2
            found = await self._rows(sql.LOG_AT, mid)
            if not found or found[0][0] < start:
                lo = mid + 1
            else:
                hi = mid
        rows = await self._rows(sql.THROUGHPUT, lo) if last else []
        return sql.throughput_rows(buckets, rows)

    async def outbound_counts(self) -> list[OutboundCount]:
        return sql.outbound_counts(await self._rows(sql.OUTBOUND_COUNTS))

    async def inbound_counts(self) -> list[InboundCount]:
        return sql.inbound_counts(await self._rows(sql.INBOUND_COUNTS))

    async def backlog_by_peer(self) -> dict[str, PeerBacklog]:
        pending = await self._rows(sql.BACKLOG_PENDING)
        return sql.backlog(pending, await self._rows(sql.BACKLOG_DEAD))

    async def dead_letters(self, limit: int = 500) -> list[TransferRow]:
        return [transfer_row(r) for r in await self._rows(sql.DEAD_LETTERS, limit)]

    async def log_after(self, after_seq: int = 0, limit: int = 200) -> list[LogRow]:
        return [log_row(r) for r in await self._rows(sql.LOG_AFTER, after_seq, limit)]

    async def log_latest(self, limit: int = 50) -> list[LogRow]:
        rows = await self._rows(sql.LOG_LATEST, limit)
        return [log_row(r) for r in reversed(rows)]

    async def message_timeline(self, message_id: str) -> list[LogRow]:
        return [log_row(r) for r in await self._rows(sql.TIMELINE, message_id)]

    async def stored_message(self, direction: str, message_id: str) -> StoredMessage | None:
        """The envelope decrypted, with its receipt (outbound: the partner's for us; inbound:
        the one this node issued)."""
        if direction == "outbound":
            rows = await self._rows(sql.STORED_OUTBOUND, message_id)
        elif direction == "inbound":
            rows = await self._rows(sql.STORED_INBOUND, self.bureau, message_id)
        else:
            return None
        return stored_message(rows[0], self.at_rest, rows[0][10]) if rows else None


class OperatorTable(Engine):
    """:class:`~gateway.store.reads.OperatorRecords`: reads beside the writer, writes
    through it."""

    async def _change(self, *statements: tuple[str, tuple[Any, ...]]) -> int:
        """The first statement's row count; the others run only if it touched a row."""
        return (await self._write(Step(statements)))[0]

    async def add_operator(self, row: OperatorRow) -> bool:
        values = (row.username, row.role, row.password_hash, row.created_at, row.updated_at)
        return bool(await self._change((sql.OPERATOR_ADD, values)))

    async def get_operator(self, username: str) -> OperatorRow | None:
        rows = await self._rows(sql.OPERATOR_GET, username)
        return sql.operator_row(rows[0]) if rows else None

    async def list_operators(self) -> list[OperatorRow]:
        return [sql.operator_row(r) for r in await self._rows(sql.OPERATOR_LIST)]

    async def update_operator(
        self,
        username: str,
        *,
        at: float,
        role: str | None = None,
        password_hash: str | None = None,
        end_sessions: bool = False,
    ) -> bool:
        update, params = sql.operator_update(role, password_hash, at, username)
        ends = ((sql.SESSIONS_END_FOR, (username,)),) if end_sessions else ()
        return bool(await self._change((update, tuple(params)), *ends))

    async def remove_operator(self, username: str) -> bool:
        ends = (sql.SESSIONS_END_FOR, (username,))
        return bool(await self._change((sql.OPERATOR_REMOVE, (username,)), ends))

    async def create_session(self, row: SessionRow, *, expire_before: float) -> None:
        values = (row.token_sha256, row.username, row.csrf_token, row.created_at, row.expires_at)
        await self._change((sql.SESSION_ADD, values), (sql.SESSIONS_EXPIRE, (expire_before,)))

    async def get_session(self, token_sha256: bytes) -> tuple[SessionRow, OperatorRow] | None:
        rows = await self._rows(sql.SESSION_JOIN, token_sha256)
        return sql.session_row(rows[0]) if rows else None

    async def end_session(self, token_sha256: bytes) -> None:
        await self._change((sql.SESSION_END, (token_sha256,)))
