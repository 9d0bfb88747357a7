"""The SQLite schema, its migrations, and how a connection to a node's file is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect", "prepare"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    message_id      TEXT PRIMARY KEY,
    receiver        TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_key      TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    envelope        BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TEXT,
    purged_at       TEXT,
    -- The receiver's clock, from its signed receipt: both sides count periods by it.
    receipt_received_at TEXT,
    age_from        TEXT  -- the dead-letter age counts from here: creation or last re-drive
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox (correlation_id, state);

CREATE TABLE IF NOT EXISTS inbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    sender         TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    record_type    TEXT NOT NULL,
    record_key     TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    envelope       BLOB NOT NULL,
    header_sha256  BLOB NOT NULL,
    payload_sha256 BLOB NOT NULL,
    received_at    TEXT NOT NULL,
    delivered_at   TEXT,
    purged_at      TEXT,
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_undelivered ON inbox (delivered_at, seq);
CREATE INDEX IF NOT EXISTS inbox_key ON inbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS inbox_message ON inbox (message_id);

CREATE TABLE IF NOT EXISTS receipts (
    issuer      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    direction   TEXT NOT NULL,  -- 'issued' by this node, or 'received' from a peer
    receipt     BLOB NOT NULL,
    stored_at   TEXT NOT NULL,
    PRIMARY KEY (issuer, message_id)
);

CREATE TABLE IF NOT EXISTS transfer_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    record_type TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS transfer_log_message ON transfer_log (message_id);

CREATE TABLE IF NOT EXISTS node_identity (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Console operators and their sessions (only the digest of a session token is kept).
CREATE TABLE IF NOT EXISTS console_operators (
    username      TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 BLOB PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
"""

# Indexes on columns that an older database gains in _migrate, and the console's: they keep
# each transfers page an index range scan whatever its depth (bench/console_transfers.py
# measures them on a million log rows; the first start on a big database takes a while).
_LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_receipt_time ON outbox (receiver, receipt_received_at);
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (sender, received_at);
CREATE INDEX IF NOT EXISTS console_outbox_time ON outbox (created_at, message_id);
CREATE INDEX IF NOT EXISTS console_outbox_state
    ON outbox (state, receiver, record_type, created_at);
CREATE INDEX IF NOT EXISTS console_outbox_record_key ON outbox (record_key);
CREATE INDEX IF NOT EXISTS console_inbox_time ON inbox (received_at, message_id);
CREATE INDEX IF NOT EXISTS console_inbox_peer ON inbox (sender, record_type, delivered_at);
CREATE INDEX IF NOT EXISTS console_inbox_record_key ON inbox (record_key);
"""


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
    conn.executescript(_SCHEMA)
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
    conn.executescript(_LATER_INDEXES)
