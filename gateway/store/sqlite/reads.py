"""The console's read models on SQLite, run on the store's reader thread (never the writer)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import TypeVar

from gateway.store import statements as sql
from gateway.store.reads import (
    TransferFilter,
    TransferPage,
)
from gateway.store.sqlite.core import SqliteCore
from gateway.store.sqlite.worker import LogAppender
from gateway.store.views import ConsoleViews

__all__ = ["SQLITE", "SqliteConsoleReads"]

T = TypeVar("T")

SQLITE = sql.Dialect(placeholder=lambda _: "?", time=str, hints=True)


def _seq_at_or_after(conn: sqlite3.Connection, at: str, last: int) -> int:
    """First seq whose time is ≥ ``at``, by bisection on seq."""
    lo, hi = 1, last + 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(sql.LOG_AT, (mid,)).fetchone()
        if row is None or row[0] < at:
            lo = mid + 1
        else:
            hi = mid
    return lo


class SqliteConsoleReads(SqliteCore, ConsoleViews):
    """The console's reads whose SQL is this engine's own."""

    async def list_transfers(self, f: TransferFilter) -> TransferPage:
        limit, queries = sql.transfer_queries(f, SQLITE)

        def job(conn: sqlite3.Connection, _: LogAppender) -> TransferPage:
            return sql.page([r for q, p in queries for r in conn.execute(q, p)], limit)

        result: TransferPage = await self._reader.submit(job)
        return result

    async def throughput(self, now: dt.datetime, hours: int = 24) -> list[tuple[str, int, int]]:
        start, buckets = sql.throughput_buckets(now, hours)

        def job(conn: sqlite3.Connection, _: LogAppender) -> list[tuple[str, int, int]]:
            last = int(conn.execute(sql.LOG_LAST).fetchone()[0] or 0)
            if not last:
                return sql.throughput_rows(buckets, [])
            first = _seq_at_or_after(conn, start, last)
            return sql.throughput_rows(buckets, conn.execute(sql.THROUGHPUT, (first,)))

        result: list[tuple[str, int, int]] = await self._reader.submit(job)
        return result
