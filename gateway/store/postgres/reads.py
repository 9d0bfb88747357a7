"""The console's read models on PostgreSQL, on pooled read connections beside the writer."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from gateway.store import statements as sql
from gateway.store.postgres.core import PostgresCore
from gateway.store.reads import (
    TransferFilter,
    TransferPage,
)
from gateway.store.views import ConsoleViews

if TYPE_CHECKING:
    from gateway.store.postgres.schema import Conn

__all__ = ["POSTGRES", "PostgresConsoleReads"]

POSTGRES = sql.Dialect(placeholder=lambda n: f"${n}", time=dt.datetime.fromisoformat, hints=False)


async def _seq_at_or_after(conn: Conn, at: str, last: int) -> int:
    """First seq whose time is ≥ ``at``, by bisection on seq (the primary key)."""
    lo, hi = 1, last + 1
    statement = sql.numbered(sql.LOG_AT)
    while lo < hi:
        mid = (lo + hi) // 2
        found = await conn.fetchval(statement, mid)
        if found is None or found < at:
            lo = mid + 1
        else:
            hi = mid
    return lo


class PostgresConsoleReads(PostgresCore, ConsoleViews):
    """The console's reads whose SQL is this engine's own."""

    async def list_transfers(self, f: TransferFilter) -> TransferPage:
        limit, queries = sql.transfer_queries(f, POSTGRES)

        async def read(conn: Conn) -> TransferPage:
            return sql.page([r for q, p in queries for r in await conn.fetch(q, *p)], limit)

        return await self._read(read)

    async def throughput(self, now: dt.datetime, hours: int = 24) -> list[tuple[str, int, int]]:
        start, buckets = sql.throughput_buckets(now, hours)

        async def read(conn: Conn) -> list[tuple[str, int, int]]:
            last = int(await conn.fetchval(sql.LOG_LAST) or 0)
            if not last:
                return sql.throughput_rows(buckets, [])
            first = await _seq_at_or_after(conn, start, last)
            rows = await conn.fetch(sql.numbered(sql.THROUGHPUT), first)
            return sql.throughput_rows(buckets, rows)

        return await self._read(read)
