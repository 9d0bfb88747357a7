"""A node's PostgreSQL schema read without the node running (synchronous).

It runs its own event loop, so do not use it from a thread that already runs one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from gateway.errors import StoreUnavailable
from gateway.store.offline import OfflineLookups
from gateway.store.postgres.connection import DRIVER_ERRORS, unavailable
from gateway.store.postgres.schema import valid_schema_name
from gateway.store.rows import LOG_COLUMNS, Row, log_entry
from gateway.store.statements import numbered
from gateway.translog import LogEntry
from gateway.vault import Vault

__all__ = ["PostgresOfflineReader", "iter_log_postgres"]

_LOG_CHUNK = 5000


class PostgresOfflineReader(OfflineLookups):
    """:class:`~gateway.store.reads.OfflineReader` on one node's schema."""

    _order = "o.ord"

    def __init__(
        self, dsn: str, schema: str, key_file: Path | None = None, vault: Vault | None = None
    ) -> None:
        super().__init__(key_file, vault)
        if not valid_schema_name(schema):
            raise StoreUnavailable(f"schema name {schema!r} is not valid")
        self.dsn = dsn
        self.schema = schema
        self.location = f"schema {schema}"
        self._runner: asyncio.Runner | None = None
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None

    def __enter__(self) -> PostgresOfflineReader:
        runner = asyncio.Runner()
        try:
            self._conn = runner.run(self._connect())
        except DRIVER_ERRORS as exc:
            runner.close()
            raise unavailable(exc, f"cannot read schema {self.schema}") from exc
        except BaseException:
            runner.close()
            raise
        self._runner = runner
        return self

    def __exit__(self, *exc: object) -> None:
        runner, conn, self._runner, self._conn = self._runner, self._conn, None, None
        if runner is not None:
            try:
                if conn is not None:
                    runner.run(conn.close())
            except DRIVER_ERRORS:
                pass  # a connection that broke closes anyway
            finally:
                runner.close()

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
            self.dsn, timeout=30, server_settings={"search_path": self.schema}
        )
        try:
            found = await conn.fetchval("SELECT to_regclass($1)", f'"{self.schema}".transfer_log')
        except BaseException:
            await conn.close()
            raise
        if found is None:
            await conn.close()
            raise StoreUnavailable(f"no node schema {self.schema} in this database")
        return conn

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Row]:
        if self._runner is None or self._conn is None:
            raise StoreUnavailable(f"{self.location} is not open")
        try:
            return list(self._runner.run(self._conn.fetch(numbered(statement), *params)))
        except DRIVER_ERRORS as exc:
            raise unavailable(exc, f"cannot read schema {self.schema}") from exc

    def iter_log(self, after_seq: int = 0) -> Iterator[LogEntry]:
        statement = f"SELECT {LOG_COLUMNS} FROM transfer_log WHERE seq > ? ORDER BY seq LIMIT ?"
        while True:
            rows = self._fetch(statement, (after_seq, _LOG_CHUNK))
            for row in rows:
                entry = log_entry(row)
                after_seq = entry.seq
                yield entry
            if len(rows) < _LOG_CHUNK:
                return


def iter_log_postgres(dsn: str, schema: str, after_seq: int = 0) -> Iterator[LogEntry]:
    """Read a node's transfer log from PostgreSQL without the node running.

    Synchronous (for the command line and worker threads): it runs its own event
    loop, so do not call it from a thread that already runs one.
    """
    with PostgresOfflineReader(dsn, schema) as reader:
        yield from reader.iter_log(after_seq)
