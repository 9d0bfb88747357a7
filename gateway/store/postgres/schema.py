"""The PostgreSQL schema of one node, its migrations, and the rules for schema names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
import asyncpg.pool

from gateway.translog import GENESIS_HASH

__all__ = ["default_schema", "prepare", "valid_schema_name"]

if TYPE_CHECKING:  # the driver's classes are generic in its stubs only
    Conn: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Text columns that order or page results compare bytewise ("C"), as SQLite does.
_DDL = f"""
CREATE TABLE IF NOT EXISTS outbox (
    ord             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    message_id      TEXT COLLATE "C" PRIMARY KEY,
    receiver        TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_key      TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    envelope        BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TIMESTAMPTZ,
    purged_at       TIMESTAMPTZ,
    -- The receiver's clock, from its signed receipt: both sides count periods by it.
    receipt_received_at TIMESTAMPTZ,
    -- The replica that holds the row for delivery, and until when (database clock).
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ,
    -- Where the dead-letter age counts from: creation, or the last re-drive.
    age_from        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox (correlation_id, state, ord);
CREATE INDEX IF NOT EXISTS outbox_receipt_time ON outbox (receiver, receipt_received_at);

CREATE TABLE IF NOT EXISTS inbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender         TEXT COLLATE "C" NOT NULL,
    message_id     TEXT COLLATE "C" NOT NULL,
    record_type    TEXT NOT NULL,
    record_key     TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    envelope       BYTEA NOT NULL,
    header_sha256  BYTEA NOT NULL,
    payload_sha256 BYTEA NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    delivered_at   TIMESTAMPTZ,
    purged_at      TIMESTAMPTZ,
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_undelivered ON inbox (delivered_at, seq);
CREATE INDEX IF NOT EXISTS inbox_key ON inbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS inbox_message ON inbox (message_id);
CREATE INDEX IF NOT EXISTS inbox_received ON inbox (sender, received_at);

CREATE TABLE IF NOT EXISTS receipts (
    issuer      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    direction   TEXT NOT NULL,  -- 'issued' by this node, or 'received' from a peer
    receipt     BYTEA NOT NULL,
    stored_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, message_id)
);

CREATE TABLE IF NOT EXISTS transfer_log (
    seq         BIGINT PRIMARY KEY,
    at          TEXT NOT NULL,  -- the exact ISO text that was hashed
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    record_type TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS transfer_log_message ON transfer_log (message_id);

-- The chain head: one row, locked by every writing transaction of every replica.
CREATE TABLE IF NOT EXISTS log_head (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO log_head VALUES (1, 0, '\\x{GENESIS_HASH.hex()}') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS node_identity (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Console operators and their sessions (only the digest of a session token is kept).
CREATE TABLE IF NOT EXISTS console_operators (
    username      TEXT COLLATE "C" PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 BYTEA PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
"""

# The console's: each transfers page is an index range scan whatever its depth. Created
# after _migrate, as they may name columns an older schema gains there.
_LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS console_outbox_time ON outbox (created_at, message_id);
CREATE INDEX IF NOT EXISTS console_outbox_state
    ON outbox (state, receiver, record_type, created_at);
CREATE INDEX IF NOT EXISTS console_outbox_record_key ON outbox (record_key);
CREATE INDEX IF NOT EXISTS console_inbox_time ON inbox (received_at, message_id);
CREATE INDEX IF NOT EXISTS console_inbox_peer ON inbox (sender, record_type, delivered_at);
CREATE INDEX IF NOT EXISTS console_inbox_record_key ON inbox (record_key);
"""


def default_schema(bureau: str) -> str:
    """The schema a node uses when the configuration names none."""
    return f"chuanyu_{bureau}".lower()


def valid_schema_name(name: str) -> bool:
    """Lower-case letters, digits and underscores, not starting with a digit, ≤ 63 bytes."""
    return _SCHEMA_NAME.fullmatch(name) is not None


async def prepare(conn: Conn, schema: str) -> None:
    """Create what is missing in ``schema`` and bring one made by an earlier version up to
    date (the caller holds the schema's advisory lock, in a transaction)."""
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(_DDL)
    found = await conn.fetchval(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'outbox' AND column_name = 'age_from'"
    )
    if found is None:
        await conn.execute("ALTER TABLE outbox ADD COLUMN age_from TIMESTAMPTZ")
        await conn.execute("UPDATE outbox SET age_from = created_at")
    await conn.execute(_LATER_INDEXES)
