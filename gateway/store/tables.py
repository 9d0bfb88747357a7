"""The node's tables, written once; each engine fills in its own column types.

A field in braces is a type an engine names in its own words (``{bytes}`` is
SQLite's BLOB and PostgreSQL's BYTEA, ``{time}`` SQLite's ISO text and
PostgreSQL's ``timestamptz``, ``{key}`` text that PostgreSQL must compare bytewise,
as SQLite does). What only one engine has (PostgreSQL's insertion order, claims and
chain-head row) comes in through the ``outbox_first``, ``outbox_last`` and
``correlation_order`` fields and the engine's own statements. Pure data.
"""

from __future__ import annotations

__all__ = ["LATER_INDEXES", "POSTGRES_TABLES", "SQLITE_TABLES", "TABLES"]

TABLES = """
CREATE TABLE IF NOT EXISTS outbox (
    {outbox_first}message_id      {key} PRIMARY KEY,
    receiver        TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_key      TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    envelope        {bytes} NOT NULL,
    created_at      {time} NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {due} NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    {time},
    purged_at       {time},
    -- The receiver's clock, from its signed receipt: both sides count periods by it.
    receipt_received_at {time},{outbox_last}
    age_from        {time}  -- the dead-letter age counts from here: creation or last re-drive
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_key ON outbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS outbox_correlation ON outbox (correlation_id, state{correlation_order});

CREATE TABLE IF NOT EXISTS inbox (
    seq            {inbox_seq},
    sender         {key} NOT NULL,
    message_id     {key} NOT NULL,
    record_type    TEXT NOT NULL,
    record_key     TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    envelope       {bytes} NOT NULL,
    header_sha256  {bytes} NOT NULL,
    payload_sha256 {bytes} NOT NULL,
    received_at    {time} NOT NULL,
    delivered_at   {time},
    purged_at      {time},
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_undelivered ON inbox (delivered_at, seq);
CREATE INDEX IF NOT EXISTS inbox_key ON inbox (record_type, record_key);
CREATE INDEX IF NOT EXISTS inbox_message ON inbox (message_id);

CREATE TABLE IF NOT EXISTS receipts (
    issuer      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    direction   TEXT NOT NULL,  -- 'issued' by this node, or 'received' from a peer
    receipt     {bytes} NOT NULL,
    stored_at   {time} NOT NULL,
    PRIMARY KEY (issuer, message_id)
);

CREATE TABLE IF NOT EXISTS transfer_log (
    seq         {log_seq} PRIMARY KEY,
    at          TEXT NOT NULL,  -- the exact ISO text that was hashed
    kind        TEXT NOT NULL,
    direction   TEXT NOT NULL,
    peer        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    record_type TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   {bytes} NOT NULL,
    hash        {bytes} NOT NULL
);
CREATE INDEX IF NOT EXISTS transfer_log_message ON transfer_log (message_id);

CREATE TABLE IF NOT EXISTS node_identity (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Console operators and their sessions (only the digest of a session token is kept).
CREATE TABLE IF NOT EXISTS console_operators (
    username      {key} PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    {seconds} NOT NULL,
    updated_at    {seconds} NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_sha256 {bytes} PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES console_operators (username) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   {seconds} NOT NULL,
    expires_at   {seconds} NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
"""

# Each field of TABLES as SQLite and PostgreSQL spell it. PostgreSQL compares key text
# bytewise ("C"), as SQLite does; its outbox keeps its insertion order in ``ord`` and the
# replica that holds a row for delivery, and until when (database clock), in
# ``claimed_by``/``claimed_until``. SQLite keeps the due time as epoch seconds.
_TYPES = (
    ("key", "TEXT", 'TEXT COLLATE "C"'),
    ("bytes", "BLOB", "BYTEA"),
    ("time", "TEXT", "TIMESTAMPTZ"),
    ("due", "REAL", "TIMESTAMPTZ"),
    ("seconds", "REAL", "DOUBLE PRECISION"),
    ("inbox_seq", "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("log_seq", "INTEGER", "BIGINT"),
    ("outbox_first", "", "ord BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,\n    "),
    ("outbox_last", "", "\n    claimed_by      TEXT,\n    claimed_until   TIMESTAMPTZ,"),
    ("correlation_order", "", ", ord"),
)  # fmt: skip
SQLITE_TABLES = TABLES.format_map({name: lite for name, lite, _ in _TYPES})
POSTGRES_TABLES = TABLES.format_map({name: pg for name, _, pg in _TYPES})

# Created after the engine's migrations: they may name columns an older database gains there.
# The console's keep each transfers page an index range scan whatever its depth
# (bench/console_transfers.py measures them on a million log rows; the first start on a big
# database takes a while).
LATER_INDEXES = """
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
