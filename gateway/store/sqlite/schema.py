"""The SQLite schema, its migrations, and how a connection to a node's file is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.tables import LATER_INDEXES, SQLITE_TABLES

__all__ = ["connect", "prepare"]


def connect(
    path: Path, *, readonly: bool = False, busy_timeout_ms: int = 5000
) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def prepare(conn: sqlite3.Connection) -> None:
    """Create what is missing and bring a database made by an earlier version up to date."""
    conn.executescript(SQLITE_TABLES)
    for table, column in (
        ("outbox", "purged_at"),
        ("inbox", "purged_at"),
        ("outbox", "receipt_received_at"),
        ("outbox", "age_from"),
    ):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
            if column == "age_from":
                conn.execute("UPDATE outbox SET age_from = created_at")
    conn.executescript(LATER_INDEXES)
