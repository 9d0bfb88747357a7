"""A node's SQLite file read without the node running (read-only, synchronous)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gateway.errors import StoreUnavailable
from gateway.store.at_rest import AtRest
from gateway.store.base import OutboundRow
from gateway.store.offline import OfflineLookups
from gateway.store.rows import LOG_COLUMNS, Row, log_entry
from gateway.store.sqlite.schema import connect
from gateway.translog import LogEntry
from gateway.vault import Vault

__all__ = ["SqliteOfflineReader", "iter_log_file", "read_outbound_file"]


class SqliteOfflineReader(OfflineLookups):
    """:class:`~gateway.store.reads.OfflineReader` on one SQLite file."""

    def __init__(self, path: Path, key_file: Path | None = None, vault: Vault | None = None):
        super().__init__(key_file, vault)
        self.path = path
        self.location = str(path)
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> SqliteOfflineReader:
        if not self.path.exists():
            raise StoreUnavailable(f"no node database at {self.path}")
        try:
            self._conn = connect(self.path, readonly=True)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"{self.path} is not open")
        return self._conn

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Row]:
        try:
            return self._connection().execute(statement, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc}") from exc

    def iter_log(self, after_seq: int = 0) -> Iterator[LogEntry]:
        try:
            rows = self._connection().execute(
                f"SELECT {LOG_COLUMNS} FROM transfer_log WHERE seq > ? ORDER BY seq", (after_seq,)
            )
            for row in rows:
                yield log_entry(row)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc}") from exc


def iter_log_file(path: Path, after_seq: int = 0) -> Iterator[LogEntry]:
    """Read a node database's transfer log without the node running (read-only)."""
    with SqliteOfflineReader(path) as reader:
        yield from reader.iter_log(after_seq)


def read_outbound_file(path: Path, vault: Vault | None = None) -> list[OutboundRow]:
    """Every outbound message of a node database, with receipts, read-only and in order.

    Without the node's ``vault`` the envelopes stay sealed (receipts are in the clear).
    """
    with SqliteOfflineReader(path, vault=vault) as reader:
        return reader._outbound_rows(AtRest(vault), ())
