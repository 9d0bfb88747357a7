"""The SQLite store's lifecycle: its two threads, the file's owner, the heartbeat."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.clock import iso_utc, utc_now
from gateway.errors import StoreUnavailable
from gateway.store.at_rest import AtRest
from gateway.store.engine import Engine
from gateway.store.sqlite.worker import LogAppender, Worker
from gateway.store.statements import Dialect
from gateway.store.writes import Step, Times
from gateway.vault import Vault

__all__ = ["SqliteCore"]


# What a probe commits: more than the slack a failed commit leaves allocated in the WAL, so
# a full disk does not pass for writable because a tiny heartbeat still fits.
_PROBE_BYTES = 256 * 1024


class SqliteCore(Engine):
    """One SQLite file: a writer thread for every mutation, a reader thread beside it."""

    def __init__(
        self,
        path: Path,
        *,
        bureau: str,
        busy_timeout_ms: int = 5000,
        vault: Vault | None = None,
    ) -> None:
        self.path = path
        self.bureau = bureau
        self.at_rest = AtRest(vault)
        self._writer = Worker("store-writer", path, writer=True, busy_timeout_ms=busy_timeout_ms)
        self._reader = Worker("store-reader", path, writer=False, busy_timeout_ms=busy_timeout_ms)
        self._opened = False

    _times = Times(text=iso_utc, due=lambda value: value.timestamp())
    _dialect = Dialect(placeholder=lambda _: "?", time=str, hints=True)
    _order = "rowid"
    _release = ""

    async def _rows(self, statement: str, *params: Any) -> list[Any]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        result: list[Any] = await self._reader.submit(job)
        return result

    async def _rows_named(self, statement: str, params: dict[str, Any]) -> list[Any]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        result: list[Any] = await self._reader.submit(job)
        return result

    async def _snapshot(self, *reads: tuple[str, Sequence[Any]]) -> list[list[Any]]:
        def job(conn: sqlite3.Connection, _: LogAppender) -> list[list[Any]]:
            conn.execute("BEGIN")  # one read transaction: one snapshot of the WAL
            try:
                return [conn.execute(statement, params).fetchall() for statement, params in reads]
            finally:
                conn.execute("COMMIT")

        result: list[list[Any]] = await self._reader.submit(job)
        return result

    async def _write(self, *steps: Step) -> list[int]:
        def job(conn: sqlite3.Connection, log: LogAppender) -> list[int]:
            counts = []
            for step in steps:
                count = conn.execute(*step.first).rowcount if step.statements else 0
                rest, events = step.after(count)
                for statement, params in rest:
                    conn.execute(statement, params)
                log.append(conn, events)
                counts.append(count)
            return counts

        result: list[int] = await self._writer.submit(job)
        return result

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._writer.start)
        await asyncio.to_thread(self._reader.start)
        self._opened = True
        await self._writer.submit(self._claim_identity)

    async def close(self) -> None:
        if self._opened:
            await asyncio.to_thread(self._writer.stop)
            await asyncio.to_thread(self._reader.stop)
            self._opened = False

    @property
    def available(self) -> bool:
        """False since the last commit failed, until one succeeds again."""
        return not self._writer.failing

    @property
    def last_error(self) -> str:
        return self._writer.last_error

    async def probe(self) -> None:
        """Commit a heartbeat: raises ``StoreUnavailable`` while the store cannot write."""

        def job(conn: sqlite3.Connection, _: LogAppender) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO node_identity VALUES ('heartbeat', ?)",
                (iso_utc(utc_now()),),
            )
            conn.execute(
                "INSERT OR REPLACE INTO node_identity VALUES ('probe', zeroblob(?))",
                (_PROBE_BYTES,),
            )

        await self._writer.submit(job)

    def _claim_identity(self, conn: sqlite3.Connection, log: LogAppender) -> None:
        # One file belongs to one bureau: refuse to open another node's database.
        row = conn.execute("SELECT value FROM node_identity WHERE key = 'bureau'").fetchone()
        if row is None:
            conn.execute("INSERT INTO node_identity VALUES ('bureau', ?)", (self.bureau,))
        elif row[0] != self.bureau:
            raise StoreUnavailable(
                f"{self.path} belongs to bureau {row[0]}, not {self.bureau}",
                reason="STORE_WRONG_NODE",
            )
